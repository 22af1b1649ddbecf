namespace ProcHex.Backends.Fake;

/// <summary>
/// A shared library: position-independent text and data linked at 0, mapped at a base the kernel picks
/// (deterministically) when the library is loaded. Symbols are offsets from that base.
/// </summary>
public sealed class FakeLibrary
{
    internal FakeLibrary(FakeObjectFile file) => File = file;

    /// <summary>The library's path.</summary>
    public string Path => File.Path;

    /// <summary>The library's file name, as SPECs name it.</summary>
    public string Name => System.IO.Path.GetFileName(Path);

    /// <summary>The library's text bytes.</summary>
    public ReadOnlyMemory<byte> Text => File.Text;

    /// <summary>Offsets from the load base.</summary>
    public IReadOnlyDictionary<string, ulong> Symbols => File.Symbols;

    internal FakeObjectFile File { get; }

    /// <inheritdoc/>
    public override string ToString() => Path;
}

/// <summary>Lays out a fake shared library: its functions and globals.</summary>
public sealed class FakeLibraryBuilder
{
    private readonly string _path;
    private readonly FakeObjectLayout _layout = new();

    /// <summary>Starts a library at <paramref name="path"/>.</summary>
    /// <param name="path">Where it is loaded from (DT_NEEDED, dlopen).</param>
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

    /// <summary>Adds a global variable <paramref name="name"/> of <paramref name="size"/> bytes.</summary>
    /// <param name="name">Its symbol.</param>
    /// <param name="size">Its size in bytes.</param>
    public FakeLibraryBuilder Global(string name, int size = 8)
    {
        _layout.Global(name, size);
        return this;
    }

    /// <summary>The library, ready for images to need or dlopen.</summary>
    public FakeLibrary Build() => new(_layout.Build(_path, 0, "_init", StableHash.Of(_path)));
}
