namespace ProcHex.Backends.Fake;

/// <summary>
/// A victim's address space as sparse pages. A vfork child holds the same instance as its parent,
/// a fork child a <see cref="Clone"/>: that difference is what makes breakpoints leak into children.
/// </summary>
internal sealed class FakeMemory
{
    public const int PageSize = 4096;

    private readonly Dictionary<ulong, byte[]> _pages;

    public FakeMemory() => _pages = [];

    private FakeMemory(Dictionary<ulong, byte[]> pages) => _pages = pages;

    /// <summary>A fork child's copy: the pages only. Counters and their arenas are not inherited (MADV_DONTFORK), nor the call tally.</summary>
    public FakeMemory Clone() => new(_pages.ToDictionary(p => p.Key, p => (byte[])p.Value.Clone()));

    /// <summary>The in-victim counters installed in this address space, by entry, live or taken out (issue 18).</summary>
    public Dictionary<ulong, FakeCounter> Counters { get; } = [];

    /// <summary>
    /// How many calls of each address completed in this address space, whatever counted them (or nothing did): the
    /// ground truth the simulation compares counters with. Shared by a vfork child; a fork child and an exec start anew.
    /// </summary>
    public Dictionary<ulong, long> Calls { get; } = [];

    public void Map(ulong address, ulong length)
    {
        for (var page = PageOf(address); page < address + length; page += PageSize)
        {
            _pages.TryAdd(page, new byte[PageSize]);
        }
    }

    public void Unmap(ulong address, ulong length)
    {
        for (var page = PageOf(address); page < address + length; page += PageSize)
        {
            _pages.Remove(page);
        }
    }

    public void Load(ulong address, ReadOnlySpan<byte> bytes)
    {
        Map(address, (ulong)bytes.Length);
        if (!TryWrite(address, bytes))
        {
            throw new InvalidOperationException("freshly mapped memory must be writable");
        }
    }

    public bool IsMapped(ulong address) => _pages.ContainsKey(PageOf(address));

    public byte? ReadByte(ulong address) =>
        _pages.TryGetValue(PageOf(address), out var page) ? page[(int)(address - PageOf(address))] : null;

    /// <summary>Copies up to the first unmapped byte, as process_vm_readv does.</summary>
    public int Read(ulong address, Span<byte> destination)
    {
        var done = 0;
        while (done < destination.Length)
        {
            var at = address + (ulong)done;
            if (!_pages.TryGetValue(PageOf(at), out var page))
            {
                break;
            }

            var offset = (int)(at - PageOf(at));
            var count = Math.Min(PageSize - offset, destination.Length - done);
            page.AsSpan(offset, count).CopyTo(destination[done..]);
            done += count;
        }

        return done;
    }

    /// <summary>All or nothing, so a failed write never leaves half a patch behind.</summary>
    public bool TryWrite(ulong address, ReadOnlySpan<byte> source)
    {
        for (var at = PageOf(address); at < address + (ulong)source.Length; at += PageSize)
        {
            if (!_pages.ContainsKey(at))
            {
                return false;
            }
        }

        var done = 0;
        while (done < source.Length)
        {
            var at = address + (ulong)done;
            var offset = (int)(at - PageOf(at));
            var count = Math.Min(PageSize - offset, source.Length - done);
            source.Slice(done, count).CopyTo(_pages[PageOf(at)].AsSpan(offset));
            done += count;
        }

        return true;
    }

    private static ulong PageOf(ulong address) => address & ~(ulong)(PageSize - 1);
}
