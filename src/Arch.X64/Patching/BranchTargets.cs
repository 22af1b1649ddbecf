using Iced.Intel;

namespace ProcHex.Arch.X64;

/// <summary>
/// Every direct branch target of some code (jmp, jcc, call, loop, xbegin with a near target), found by a linear sweep:
/// what an entry patch must not split. <see cref="EntryPatcher"/> sweeps the function; the Linux backend sweeps the
/// whole executable mapping around it. A function's own extent is not enough:
/// hand-written code enters its neighbours behind their first instruction (glibc's <c>__mempcpy_*</c> ends in a jump to
/// the instruction after <c>__memmove_*</c>'s first, in another function's bytes). Bytes that are data or padding may
/// decode to a branch: such a target only makes a site refused, never accepted. Indirect branches are not seen. Pure.
/// </summary>
internal sealed class BranchTargets
{
    private readonly ulong[] _targets;
    private readonly ulong[] _sources;

    private BranchTargets(ulong[] targets, ulong[] sources)
    {
        _targets = targets;
        _sources = sources;
    }

    /// <summary>How many distinct targets were found.</summary>
    public int Count => _targets.Length;

    /// <summary>Decodes <paramref name="code"/>, which lies at <paramref name="address"/>, from its first byte to its last.</summary>
    public static BranchTargets Scan(ulong address, ReadOnlySpan<byte> code)
    {
        var branches = new List<DirectBranch>();
        var reader = new ByteArrayCodeReader(code.ToArray());
        var decoder = Decoder.Create(64, reader, address);
        var end = address + (ulong)code.Length;
        while (decoder.IP < end)
        {
            decoder.Decode(out var instruction);
            if (instruction.IsInvalid)
            {
                // One byte on, not past what Iced took as the bad instruction: a branch may start right after.
                reader.Position = (int)(instruction.IP - address) + 1;
                decoder.IP = instruction.IP + 1;
                continue;
            }

            if (instruction.Op0Kind is OpKind.NearBranch16 or OpKind.NearBranch32 or OpKind.NearBranch64)
            {
                branches.Add(new DirectBranch(instruction.IP, instruction.NearBranchTarget));
            }
        }

        // By target, and for each target the first branch to it in the code.
        branches.Sort(static (a, b) => a.Target != b.Target ? a.Target.CompareTo(b.Target) : a.From.CompareTo(b.From));
        var distinct = branches.DistinctBy(b => b.Target).ToArray();
        return new BranchTargets([.. distinct.Select(b => b.Target)], [.. distinct.Select(b => b.From)]);
    }

    /// <summary>The branch with the lowest target strictly inside (<paramref name="start"/>, <paramref name="end"/>), if any.</summary>
    public DirectBranch? Inside(ulong start, ulong end)
    {
        var index = Array.BinarySearch(_targets, start + 1);
        if (index < 0)
        {
            index = ~index;
        }

        return index < _targets.Length && _targets[index] < end ? new DirectBranch(_sources[index], _targets[index]) : null;
    }
}

/// <summary>A direct branch: the instruction at <paramref name="From"/> goes to <paramref name="Target"/>.</summary>
internal readonly record struct DirectBranch(ulong From, ulong Target);
