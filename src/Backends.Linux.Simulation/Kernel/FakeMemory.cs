namespace ProcHex.Backends.Linux.Simulation.Kernel;

/// <summary>A sparse byte map of a process's address space: only mapped bytes exist.</summary>
internal sealed class FakeMemory
{
    private readonly Dictionary<ulong, byte> _bytes = [];

    public void Map(ulong address, byte value) => _bytes[address] = value;

    public bool TryRead(ulong address, out byte value) => _bytes.TryGetValue(address, out value);

    /// <summary>Copies as many bytes as are mapped from <paramref name="address"/> on; returns how many.</summary>
    public int Read(ulong address, Span<byte> buffer)
    {
        for (var i = 0; i < buffer.Length; i++)
        {
            if (!_bytes.TryGetValue(address + (ulong)i, out buffer[i]))
            {
                return i;
            }
        }

        return buffer.Length;
    }

    /// <summary>Writes over mapped bytes only (as FOLL_FORCE does over read-only text); returns how many.</summary>
    public int Write(ulong address, ReadOnlySpan<byte> data)
    {
        for (var i = 0; i < data.Length; i++)
        {
            if (!_bytes.ContainsKey(address + (ulong)i))
            {
                return i;
            }

            _bytes[address + (ulong)i] = data[i];
        }

        return data.Length;
    }

    /// <summary>The mapped addresses holding <paramref name="value"/>, in order.</summary>
    public IEnumerable<ulong> Find(byte value) => _bytes.Where(b => b.Value == value).Select(b => b.Key).Order();

    /// <summary>fork: the child's copy-on-write copy, here simply a copy.</summary>
    public FakeMemory Copy()
    {
        var copy = new FakeMemory();
        foreach (var (address, value) in _bytes)
        {
            copy._bytes[address] = value;
        }

        return copy;
    }
}
