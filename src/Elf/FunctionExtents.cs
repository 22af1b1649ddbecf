namespace ProcHex.Elf;

/// <summary>
/// Where functions start and how long they are, from an object's unwind table (<see cref="EhFrame"/>): one entry per
/// FDE, in link-time addresses. What a stripped object still says about its functions. Immutable.
/// </summary>
internal sealed class FunctionExtents
{
    private readonly ulong[] _starts;
    private readonly ulong[] _lengths;

    private FunctionExtents(ulong[] starts, ulong[] lengths)
    {
        _starts = starts;
        _lengths = lengths;
    }

    /// <summary>No extents: no unwind table, or one that could not be read.</summary>
    public static FunctionExtents Empty { get; } = new([], []);

    /// <summary>How many functions start at a known address with a known length.</summary>
    public int Count => _starts.Length;

    /// <summary>
    /// The table of <paramref name="extents"/> (start, length). Two entries that start at the same address but disagree
    /// on the length make that address unknown: neither can be trusted.
    /// </summary>
    public static FunctionExtents From(List<(ulong Start, ulong Length)> extents)
    {
        if (extents.Count == 0)
        {
            return Empty;
        }

        extents.Sort(static (a, b) => a.Start != b.Start ? a.Start.CompareTo(b.Start) : a.Length.CompareTo(b.Length));
        var starts = new List<ulong>(extents.Count);
        var lengths = new List<ulong>(extents.Count);
        for (var i = 0; i < extents.Count;)
        {
            var (start, length) = extents[i];
            var next = i + 1;
            var agreed = true;
            for (; next < extents.Count && extents[next].Start == start; next++)
            {
                agreed &= extents[next].Length == length;
            }

            if (agreed)
            {
                starts.Add(start);
                lengths.Add(length);
            }

            i = next;
        }

        return new FunctionExtents([.. starts], [.. lengths]);
    }

    /// <summary>The length of the function that starts exactly at <paramref name="start"/>; false when none does.</summary>
    /// <param name="start">A link-time address (an address in the victim minus the load bias).</param>
    /// <param name="length">Its length in bytes.</param>
    public bool TryGetLength(ulong start, out ulong length)
    {
        var index = Array.BinarySearch(_starts, start);
        length = index >= 0 ? _lengths[index] : 0;
        return index >= 0;
    }

    /// <summary>
    /// The bytes to check for branches of the function that starts exactly at <paramref name="start"/>: its length, or,
    /// when that is more, up to the next entry's start (at most <paramref name="limit"/>). An entry may cover less than
    /// its function (glibc's hand-written <c>clone</c>: 0x30 of 0x5b bytes), and a branch from the uncovered tail must
    /// be seen too; bytes of padding or of the next function only make the check stricter.
    /// </summary>
    public bool TryGetReach(ulong start, ulong limit, out ulong reach)
    {
        var index = Array.BinarySearch(_starts, start);
        if (index < 0)
        {
            reach = 0;
            return false;
        }

        reach = _lengths[index];
        if (index + 1 < _starts.Length && _starts[index + 1] - start is var gap && gap > reach && gap <= limit)
        {
            reach = gap;
        }

        return true;
    }
}
