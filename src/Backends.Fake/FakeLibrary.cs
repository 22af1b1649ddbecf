namespace ProcHex.Backends.Fake;

/// <summary>
/// A shared library: position-independent text and data linked at 0, mapped at a base the kernel picks
/// (deterministically) when the library is loaded. Symbols are offsets from that base.
/// </summary>
public sealed class FakeLibrary
{
    internal FakeLibrary(FakeObjectFile file) => File = file;

    public string Path => File.Path;

    public string Name => System.IO.Path.GetFileName(Path);

    public ReadOnlyMemory<byte> Text => File.Text;

    /// <summary>Offsets from the load base.</summary>
    public IReadOnlyDictionary<string, ulong> Symbols => File.Symbols;

    internal FakeObjectFile File { get; }

    /// <inheritdoc/>
    public override string ToString() => Path;
}

public sealed class FakeLibraryBuilder
{
    private readonly string _path;
    private readonly FakeObjectLayout _layout = new();

    public FakeLibraryBuilder(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        _path = path;
    }

    /// <summary>A function; with <paramref name="counts"/>, each execution increments that global (found in any loaded object).</summary>
    public FakeLibraryBuilder Function(string name, string? counts = null)
    {
        _layout.Function(name, counts);
        return this;
    }

    public FakeLibraryBuilder Global(string name, int size = 8)
    {
        _layout.Global(name, size);
        return this;
    }

    public FakeLibrary Build() => new(_layout.Build(_path, 0, "_init", StableHash.Of(_path)));
}
