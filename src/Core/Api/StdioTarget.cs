namespace ProcHex;

/// <summary>What a created victim's standard input, output or error is connected to (issue 22 item 1).</summary>
public enum StdioKind
{
    /// <summary>The tracer's own descriptor, as a child started without redirection gets it.</summary>
    Inherit,

    /// <summary><c>/dev/null</c>: reads see end of file, writes are discarded.</summary>
    Null,

    /// <summary>A file, opened by the tracer before the victim starts (so a failure names the file).</summary>
    File,

    /// <summary>A pipe whose other end is a <see cref="Stream"/> on the <see cref="ProcessHandle"/>.</summary>
    Pipe,
}

/// <summary>
/// Where one standard descriptor of a created victim goes: <see cref="Inherit"/>, <see cref="Null"/>,
/// <see cref="File(string, bool)"/> or <see cref="Pipe"/>.
/// </summary>
/// <remarks>
/// A pipe holds what the kernel buffers (64 KiB by default on Linux). A victim that writes more while nobody reads
/// blocks in its write, exactly as a child of <c>System.Diagnostics.Process</c> does: read the stream (on another
/// task if need be) while the victim runs. The tracer itself never waits for the victim's output: breakpoints are
/// still answered, and releasing, destroying or disposing the session works while the victim is blocked on a full
/// pipe. A relative file path is resolved against the tracer's working directory, not the victim's.
/// </remarks>
public sealed record StdioTarget
{
    private StdioTarget(StdioKind kind, string? path, bool append)
    {
        Kind = kind;
        Path = path;
        Append = append;
    }

    /// <summary>The tracer's own descriptor (the default).</summary>
    public static StdioTarget Inherit { get; } = new(StdioKind.Inherit, null, false);

    /// <summary><c>/dev/null</c>.</summary>
    public static StdioTarget Null { get; } = new(StdioKind.Null, null, false);

    /// <summary>A pipe, read or written through <see cref="ProcessHandle.StandardOutput"/> and its siblings.</summary>
    public static StdioTarget Pipe { get; } = new(StdioKind.Pipe, null, false);

    /// <summary>What the descriptor is connected to.</summary>
    public StdioKind Kind { get; }

    /// <summary>The file, for <see cref="StdioKind.File"/>; null otherwise.</summary>
    public string? Path { get; }

    /// <summary>For an output file: append to it instead of truncating it.</summary>
    public bool Append { get; }

    /// <summary>
    /// The file <paramref name="path"/>: read for standard input (it must exist), written for output and error
    /// (created with mode 0666 less the umask, truncated unless <paramref name="append"/>).
    /// </summary>
    /// <param name="path">The file; relative to the tracer's working directory.</param>
    /// <param name="append">For output: append instead of truncating.</param>
    public static StdioTarget File(string path, bool append = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return new(StdioKind.File, path, append);
    }

    /// <inheritdoc/>
    public override string ToString() => Kind switch
    {
        StdioKind.File => $"file {Path}{(Append ? " (append)" : string.Empty)}",
        _ => Kind.ToString().ToLowerInvariant(),
    };
}

/// <summary>A resource limit a created victim starts with (setrlimit(2) names).</summary>
public enum ResourceLimit
{
    /// <summary>RLIMIT_CORE: the largest core file, in bytes (0: none).</summary>
    CoreFileSize,

    /// <summary>RLIMIT_NOFILE: one more than the highest descriptor number it may open.</summary>
    OpenFiles,

    /// <summary>RLIMIT_STACK: the main thread's stack, in bytes.</summary>
    StackSize,

    /// <summary>RLIMIT_AS: the address space, in bytes.</summary>
    AddressSpace,

    /// <summary>RLIMIT_CPU: CPU time, in seconds.</summary>
    CpuTime,

    /// <summary>RLIMIT_FSIZE: the largest file it may write, in bytes.</summary>
    FileSize,
}

/// <summary>A soft and a hard value of a <see cref="ResourceLimit"/>; <see cref="Unlimited"/> is RLIM_INFINITY.</summary>
/// <param name="Soft">What the kernel enforces.</param>
/// <param name="Hard">The ceiling the victim may raise its soft value to.</param>
public readonly record struct ResourceLimitValue(ulong Soft, ulong Hard)
{
    /// <summary>No limit (RLIM_INFINITY).</summary>
    public const ulong Unlimited = ulong.MaxValue;

    /// <summary>The same soft and hard value.</summary>
    /// <param name="both">Soft and hard.</param>
    public static ResourceLimitValue Both(ulong both) => new(both, both);
}
