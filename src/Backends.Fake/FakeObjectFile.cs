namespace ProcHex.Backends.Fake;

/// <summary>
/// The layout shared by executables, libraries and the dynamic linker: text, data and symbols as link-time
/// values. An object is placed in memory with a load bias (0 for a fixed executable, the map base for a library).
/// </summary>
internal sealed class FakeObjectFile
{
    public const byte Int3 = 0xCC;

    public FakeObjectFile(
        string path,
        ulong textStart,
        byte[] text,
        ulong dataSize,
        IReadOnlyDictionary<string, ulong> symbols,
        IReadOnlyDictionary<ulong, string> counters,
        IReadOnlySet<ulong>? unpatchable = null)
    {
        Path = path;
        TextStart = textStart;
        Text = text;
        DataStart = AlignUp(textStart + (ulong)text.Length);
        DataSize = dataSize;
        Symbols = symbols;
        Counters = counters;
        Unpatchable = unpatchable ?? new HashSet<ulong>();
    }

    public string Path { get; }

    public ulong TextStart { get; }

    /// <summary>The original instructions; never contains an int3, so an 0xCC in memory is always a patch.</summary>
    public byte[] Text { get; }

    public ulong DataStart { get; }

    public ulong DataSize { get; }

    public IReadOnlyDictionary<string, ulong> Symbols { get; }

    /// <summary>Function value → the global it increments each time its first instruction runs.</summary>
    public IReadOnlyDictionary<ulong, string> Counters { get; }

    /// <summary>
    /// Function values whose first instructions an in-victim counter may not displace (a branch lands inside them): the
    /// fake's deterministic refusal.
    /// </summary>
    public IReadOnlySet<ulong> Unpatchable { get; }

    /// <summary>The size of the function whose symbol's value is <paramref name="value"/>; null for data and unknown values.</summary>
    public int? FunctionSize(ulong value) =>
        value >= TextStart && value < TextStart + (ulong)Text.Length && Symbols.Values.Contains(value) ? (int)FakeObjectLayout.FunctionSpacing : null;

    public ulong End => DataStart + Math.Max(DataSize, FakeMemory.PageSize);

    public bool Contains(ulong value) => value >= TextStart && value < End;

    public static ulong AlignUp(ulong value) => (value + FakeMemory.PageSize - 1) & ~(ulong)(FakeMemory.PageSize - 1);

    /// <summary>Deterministic, varied filler so a patch restored to the wrong byte shows up.</summary>
    public static byte[] GenerateText(int length, int seed)
    {
        var text = new byte[length];
        for (var i = 0; i < length; i++)
        {
            var value = (byte)((i * 7) + (seed * 13) + 0x11);
            text[i] = value == Int3 ? (byte)0xC3 : value;
        }

        return text;
    }
}

/// <summary>Collects functions and globals and lays them out: functions 0x40 apart in text, globals in data.</summary>
internal sealed class FakeObjectLayout
{
    /// <summary>How far apart functions are, and so each function's size.</summary>
    public const ulong FunctionSpacing = 0x40;

    private readonly List<(string Name, string? Counter)> _functions = [];
    private readonly List<(string Name, int Size)> _globals = [];
    private readonly HashSet<string> _unpatchable = new(StringComparer.Ordinal);

    public void Function(string name, string? counts)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (_functions.Exists(f => f.Name == name) || _globals.Exists(g => g.Name == name))
        {
            throw new ArgumentException($"symbol '{name}' is defined twice", nameof(name));
        }

        _functions.Add((name, counts));
    }

    /// <summary>Marks function <paramref name="name"/> (defined before or after) as one an in-victim counter refuses.</summary>
    public void Unpatchable(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        _unpatchable.Add(name);
    }

    public void Global(string name, int size)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        if (_functions.Exists(f => f.Name == name) || _globals.Exists(g => g.Name == name))
        {
            throw new ArgumentException($"symbol '{name}' is defined twice", nameof(name));
        }

        _globals.Add((name, size));
    }

    /// <summary>The first text slot (value textStart) is the entry point; functions follow.</summary>
    public FakeObjectFile Build(string path, ulong textStart, string entryName, int seed)
    {
        var symbols = new Dictionary<string, ulong>(StringComparer.Ordinal) { [entryName] = textStart };
        var counters = new Dictionary<ulong, string>();
        var next = textStart + FunctionSpacing;
        foreach (var (name, counter) in _functions)
        {
            symbols[name] = next;
            if (counter is not null)
            {
                counters[next] = counter;
            }

            next += FunctionSpacing;
        }

        var textLength = FakeObjectFile.AlignUp(next - textStart);
        var dataStart = FakeObjectFile.AlignUp(textStart + textLength);
        var offset = 0UL;
        foreach (var (name, size) in _globals)
        {
            symbols[name] = dataStart + offset;
            offset += ((ulong)size + 7) & ~7UL;
        }

        foreach (var name in _unpatchable)
        {
            if (!_functions.Exists(f => f.Name == name))
            {
                throw new ArgumentException($"'{name}' is marked unpatchable but is no function of {path}", nameof(path));
            }
        }

        var unpatchable = _unpatchable.Select(name => symbols[name]).ToHashSet();
        return new FakeObjectFile(path, textStart, FakeObjectFile.GenerateText((int)textLength, seed), offset, symbols, counters, unpatchable);
    }
}
