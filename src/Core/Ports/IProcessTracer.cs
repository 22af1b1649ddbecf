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

/// <summary>What to start: the file, its argv (argv[0] included) and its environment.</summary>
/// <param name="File">The program to execute.</param>
/// <param name="Arguments">The complete argv, argv[0] included.</param>
/// <param name="Environment">"NAME=value" entries; null inherits the tracer's environment.</param>
public sealed record ProcessStartRequest(
    string File,
    IReadOnlyList<string> Arguments,
    IReadOnlyList<string>? Environment = null);

/// <summary>How a grab holds its process.</summary>
public enum GrabAccess
{
    /// <summary>Traced and stopped: breakpoints, control loop.</summary>
    Control,

    /// <summary>Not stopped, not traced: memory reads and symbol lookup only.</summary>
    ReadOnly,
}
