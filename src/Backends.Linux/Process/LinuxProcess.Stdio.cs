using ProcHex.Ports;

namespace ProcHex.Backends.Linux;

/// <summary>The tracer's ends of a created victim's pipes (issue 22 item 1).</summary>
internal sealed partial class LinuxProcess
{
    /// <summary>Set once by the create; the core disposes them after <see cref="Release"/>.</summary>
    public StandardStreams? Streams { get; init; }
}
