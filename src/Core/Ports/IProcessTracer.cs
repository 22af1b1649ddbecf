namespace ProcHex.Ports;

/// <summary>
/// The OS seam: one implementation per operating system (Linux ptrace, FreeBSD ptrace, the fake kernel).
/// Porting ProcHex means implementing this interface and <see cref="ITracedProcess"/>; the core never changes.
/// </summary>
/// <remarks>
/// Threading contract. Every member may be called from any thread. A backend whose kernel binds
/// tracing to one thread (Linux) marshals calls to that thread itself. The core never blocks inside
/// a port call waiting for another port call, so a backend may run the core's continuations on its
/// own owner thread and service nested calls inline.
/// </remarks>
public interface IProcessTracer
{
    /// <summary>A short name for messages and logs: "linux", "freebsd", "fake".</summary>
    string Name { get; }

    /// <summary>
    /// Starts <see cref="ProcessStartRequest.File"/> under control, stopped before the first
    /// instruction of its image (S1). The returned process is stopped; its first
    /// <see cref="ITracedProcess.WaitForStopAsync"/> is not needed to observe that stop.
    /// </summary>
    /// <exception cref="ProcessStartException">The file could not be executed; the message is the reason.</exception>
    ValueTask<ITracedProcess> CreateAsync(ProcessStartRequest request, CancellationToken cancellationToken);

    /// <summary>
    /// Attaches to a running process (S3). With <see cref="GrabAccess.Control"/> the process is
    /// stopped when this returns; with <see cref="GrabAccess.ReadOnly"/> it is neither stopped nor traced (S4).
    /// </summary>
    /// <exception cref="GrabException">The process cannot be grabbed; the message is the reason.</exception>
    ValueTask<ITracedProcess> GrabAsync(int pid, GrabAccess access, CancellationToken cancellationToken);

    /// <summary>
    /// The start time of the process <paramref name="pid"/> names now, in the clock of
    /// <see cref="ITracedProcess.StartTime"/>; null when there is none or the backend cannot tell. Any thread.
    /// </summary>
    ulong? StartTimeOf(int pid) => null;
}

/// <summary>What to start: the file, its argv (argv[0] included), its environment and the create options.</summary>
/// <param name="File">The program to execute.</param>
/// <param name="Arguments">The complete argv, argv[0] included.</param>
/// <param name="Environment">"NAME=value" entries; null inherits the tracer's environment.</param>
/// <remarks>
/// A backend that cannot honour an option that differs from its default refuses the create with a
/// <see cref="ProcessStartException"/> of kind <see cref="TracerErrorKind.Unsupported"/>, never ignores it.
/// </remarks>
public sealed record ProcessStartRequest(
    string File,
    IReadOnlyList<string> Arguments,
    IReadOnlyList<string>? Environment = null)
{
    /// <summary>The working directory; null inherits the tracer's.</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>Standard input; a pipe comes back as <see cref="StandardStreams.Input"/>.</summary>
    public StdioTarget StandardInput { get; init; } = StdioTarget.Inherit;

    /// <summary>Standard output; a pipe comes back as <see cref="StandardStreams.Output"/>.</summary>
    public StdioTarget StandardOutput { get; init; } = StdioTarget.Inherit;

    /// <summary>Standard error; a pipe comes back as <see cref="StandardStreams.Error"/>.</summary>
    public StdioTarget StandardError { get; init; } = StdioTarget.Inherit;

    /// <summary>Address-space layout randomization off for the new process.</summary>
    public bool DisableAslr { get; init; }

    /// <summary>Resource limits set before the program runs; null or empty inherits all.</summary>
    public IReadOnlyDictionary<ResourceLimit, ResourceLimitValue>? ResourceLimits { get; init; }

    /// <summary>
    /// The options that ask for more than a plain start, named for a message ("working directory /srv",
    /// "standard output pipe", "ASLR off", "resource limit OpenFiles"): what a backend without them must refuse.
    /// </summary>
    public IReadOnlyList<string> RequestedOptions
    {
        get
        {
            var names = new List<string>();
            if (WorkingDirectory is not null)
            {
                names.Add($"working directory {WorkingDirectory}");
            }

            string[] streams = ["standard input", "standard output", "standard error"];
            for (var i = 0; i < streams.Length; i++)
            {
                if (Stdio[i].Kind != StdioKind.Inherit)
                {
                    names.Add($"{streams[i]} {Stdio[i]}");
                }
            }

            if (DisableAslr)
            {
                names.Add("ASLR off");
            }

            names.AddRange((ResourceLimits ?? new Dictionary<ResourceLimit, ResourceLimitValue>()).Keys.Select(l => $"resource limit {l}"));
            return names;
        }
    }

    /// <summary>The three targets, index 0, 1 and 2 as the descriptors they replace.</summary>
    public IReadOnlyList<StdioTarget> Stdio => [StandardInput, StandardOutput, StandardError];
}

/// <summary>
/// The tracer's ends of a created process's piped standard descriptors (issue 22 item 1): owned by the process's
/// handle and disposed when it is let go.
/// </summary>
/// <param name="Input">Written to reach the victim's standard input; null when it is not a pipe.</param>
/// <param name="Output">Read for the victim's standard output; null when it is not a pipe.</param>
/// <param name="Error">Read for the victim's standard error; null when it is not a pipe.</param>
public sealed record StandardStreams(Stream? Input, Stream? Output, Stream? Error) : IDisposable
{
    /// <summary>Closes the three streams (a victim that writes on gets EPIPE or SIGPIPE).</summary>
    public void Dispose()
    {
        Input?.Dispose();
        Output?.Dispose();
        Error?.Dispose();
    }
}

/// <summary>How a grab holds its process.</summary>
public enum GrabAccess
{
    /// <summary>Traced and stopped: breakpoints, control loop.</summary>
    Control,

    /// <summary>Not stopped, not traced: memory reads and symbol lookup only.</summary>
    ReadOnly,
}
