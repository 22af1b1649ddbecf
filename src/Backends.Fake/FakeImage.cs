using ProcHex.Ports;

namespace ProcHex.Backends.Fake;

/// <summary>
/// An executable the fake kernel can run: fixed text and data (load bias 0), symbols, the dynamic linker it
/// needs (none for a static program), the libraries it links against and the program its main thread runs.
/// Build one with <see cref="FakeImageBuilder"/> and register it with <see cref="FakeKernel.Register(FakeImage)"/>.
/// </summary>
public sealed class FakeImage
{
    private readonly Func<IReadOnlyList<string>, IReadOnlyList<FakeStep>> _program;

    internal FakeImage(
        FakeObjectFile file,
        FakeDynamicLinker? dynamicLinker,
        IReadOnlyList<FakeLibrary> needed,
        bool setId,
        bool executable,
        Func<IReadOnlyList<string>, IReadOnlyList<FakeStep>> program)
    {
        File = file;
        DynamicLinker = dynamicLinker;
        Needed = needed;
        SetId = setId;
        Executable = executable;
        _program = program;
    }

    /// <summary>The executable's path.</summary>
    public string Path => File.Path;

    /// <summary>The executable's file name.</summary>
    public string Name => System.IO.Path.GetFileName(Path);

    /// <summary>Where its text starts (the fake's link address).</summary>
    public ulong TextBase => File.TextStart;

    /// <summary>The executable's text bytes, as the fake's memory holds them before any breakpoint.</summary>
    public ReadOnlyMemory<byte> Text => File.Text;

    /// <summary>Absolute addresses: the executable is not relocated.</summary>
    public IReadOnlyDictionary<string, ulong> Symbols => File.Symbols;

    /// <summary>Where the kernel starts a static image; a dynamic one starts in its linker.</summary>
    public ulong Entry => File.TextStart;

    /// <summary>Null for a static image: no rtld events, <see cref="ITracedProcess.OpenRtldAgent"/> returns null.</summary>
    public FakeDynamicLinker? DynamicLinker { get; }

    /// <summary>Mapped by the linker before preinit.</summary>
    public IReadOnlyList<FakeLibrary> Needed { get; }

    /// <summary>Exec'ing it under a tracer loses control.</summary>
    public bool SetId { get; }

    /// <summary>False makes create fail with "Permission denied".</summary>
    public bool Executable { get; }

    internal FakeObjectFile File { get; }

    /// <summary>The address of function or global <paramref name="symbol"/>; <see cref="KeyNotFoundException"/> when there is none.</summary>
    /// <param name="symbol">The symbol's name.</param>
    public ulong AddressOf(string symbol) =>
        Symbols.TryGetValue(symbol, out var address) ? address : throw new KeyNotFoundException($"{Path} has no symbol '{symbol}'");

    /// <summary>What the main thread runs after the linker and <c>main</c>'s first instruction, given argv.</summary>
    public IReadOnlyList<FakeStep> ProgramFor(IReadOnlyList<string> arguments) => _program(arguments);

    /// <inheritdoc/>
    public override string ToString() => Path;
}

/// <summary>Builds a <see cref="FakeImage"/>. Dynamic (with <see cref="FakeDynamicLinker.Default"/>) unless told otherwise.</summary>
public sealed class FakeImageBuilder
{
    private readonly string _path;
    private readonly FakeObjectLayout _layout = new();
    private readonly List<FakeLibrary> _needed = [];
    private FakeDynamicLinker? _linker = FakeDynamicLinker.Default;
    private ulong _textBase = 0x401000;
    private bool _setId;
    private bool _executable = true;
    private Func<IReadOnlyList<string>, IReadOnlyList<FakeStep>> _program = _ => [];

    /// <summary>Starts an executable at <paramref name="path"/>.</summary>
    /// <param name="path">Where programs name it (argv[0], exec).</param>
    public FakeImageBuilder(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        _path = path;
    }

    /// <summary>A function; with <paramref name="counts"/>, each execution of its first instruction increments that 8-byte global.</summary>
    public FakeImageBuilder Function(string name, string? counts = null)
    {
        _layout.Function(name, counts);
        return this;
    }

    /// <summary>
    /// Marks function <paramref name="name"/> as one whose first instructions cannot be moved (a branch lands inside
    /// them): <see cref="ITracedProcess.InstallCounters"/> refuses it, and the core counts it with a trap (issue 18).
    /// </summary>
    /// <param name="name">A function of this image.</param>
    public FakeImageBuilder Unpatchable(string name)
    {
        _layout.Unpatchable(name);
        return this;
    }

    /// <summary>A zero-initialised global in the data segment.</summary>
    public FakeImageBuilder Global(string name, int size = 8)
    {
        _layout.Global(name, size);
        return this;
    }

    /// <summary>Links the text at <paramref name="address"/> instead of the default.</summary>
    /// <param name="address">The first text address.</param>
    public FakeImageBuilder TextBase(ulong address)
    {
        if (address % FakeMemory.PageSize != 0)
        {
            throw new ArgumentException("text must start on a page", nameof(address));
        }

        _textBase = address;
        return this;
    }

    /// <summary>A static executable: no dynamic linker, no rtld events.</summary>
    public FakeImageBuilder Static()
    {
        _linker = null;
        return this;
    }

    /// <summary>A dynamic executable, loaded by <paramref name="linker"/> (the default fake linker when null).</summary>
    /// <param name="linker">Its dynamic linker.</param>
    public FakeImageBuilder Dynamic(FakeDynamicLinker? linker = null)
    {
        _linker = linker ?? FakeDynamicLinker.Default;
        return this;
    }

    /// <summary>Adds a DT_NEEDED library, loaded before the program starts.</summary>
    /// <param name="library">The library.</param>
    public FakeImageBuilder Needs(FakeLibrary library)
    {
        ArgumentNullException.ThrowIfNull(library);
        _needed.Add(library);
        return this;
    }

    /// <summary>A set-id program: a tracer loses control when it is exec'ed.</summary>
    /// <param name="setId">False to undo.</param>
    public FakeImageBuilder SetId(bool setId = true)
    {
        _setId = setId;
        return this;
    }

    /// <summary>A file without execute permission: creating it fails as execve would.</summary>
    public FakeImageBuilder NotExecutable()
    {
        _executable = false;
        return this;
    }

    /// <summary>The same steps whatever argv says.</summary>
    public FakeImageBuilder Program(params FakeStep[] steps)
    {
        ArgumentNullException.ThrowIfNull(steps);
        _program = _ => steps;
        return this;
    }

    /// <summary>Steps computed from argv (argv[0] included).</summary>
    public FakeImageBuilder Program(Func<IReadOnlyList<string>, IReadOnlyList<FakeStep>> program)
    {
        ArgumentNullException.ThrowIfNull(program);
        _program = program;
        return this;
    }

    /// <summary>The image, ready for <c>FakeKernel.Register</c>.</summary>
    public FakeImage Build() =>
        new(_layout.Build(_path, _textBase, "_start", StableHash.Of(_path)), _linker, [.. _needed], _setId, _executable, _program);
}

/// <summary>string.GetHashCode differs per run; replay needs the same bytes every time.</summary>
internal static class StableHash
{
    public static int Of(string text)
    {
        var hash = 2166136261u;
        foreach (var c in text)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return (int)(hash & 0x7fffffff);
    }
}
