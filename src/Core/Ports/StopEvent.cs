namespace ProcHex.Ports;

/// <summary>What a wait for the victim returned.</summary>
/// <param name="Kind">Stopped, exited (undead) or lost.</param>
/// <param name="Reason">Why it stopped; <see cref="StopReason.None"/> unless <paramref name="Kind"/> is Stopped.</param>
/// <param name="ThreadId">The thread that reported the stop (the pid for single-threaded victims).</param>
/// <param name="ProgramCounter">For a breakpoint, already adjusted to the breakpoint's address.</param>
/// <param name="Exit">For <see cref="StopKind.Exited"/>: how it ended.</param>
/// <param name="Message">For <see cref="StopKind.Lost"/> or odd stops: why, in words.</param>
public readonly record struct StopEvent(
    StopKind Kind,
    StopReason Reason,
    int ThreadId,
    ulong ProgramCounter,
    ExitStatus Exit = default,
    string? Message = null)
{
    public static StopEvent Stopped(StopReason reason, int threadId, ulong pc = 0) =>
        new(StopKind.Stopped, reason, threadId, pc);

    public static StopEvent Exited(int pid, ExitStatus status) =>
        new(StopKind.Exited, StopReason.None, pid, 0, status);

    public static StopEvent Lost(int pid, string message) =>
        new(StopKind.Lost, StopReason.None, pid, 0, default, message);
}

public enum StopKind
{
    Stopped,

    /// <summary>The victim is dead (undead until reaped); the control loop ends.</summary>
    Exited,

    /// <summary>Control is gone (exec of a set-id program, detached by force); the control loop ends.</summary>
    Lost,
}

public enum StopReason
{
    None,

    /// <summary>Stopped by someone else (SIGSTOP, a job-control stop, another tool): wait for them (S20).</summary>
    StoppedByOthers,

    /// <summary>Resumed by someone else after <see cref="StoppedByOthers"/>; the victim waits for <see cref="ITracedProcess.Resume"/>.</summary>
    ResumedByOthers,

    /// <summary>A planted breakpoint was hit; the PC is the breakpoint's address.</summary>
    Breakpoint,

    /// <summary>A single-step completed that the backend did not consume itself.</summary>
    SingleStep,

    /// <summary>A fork or vfork is under way: breakpoints must leave the text until it is done (S13).</summary>
    ForkStarting,

    /// <summary>A fork completed; the child runs free of our breakpoints.</summary>
    ForkDone,

    /// <summary>A vfork child released the shared memory (exec or exit).</summary>
    VforkDone,

    /// <summary>An exec completed: a new image, no breakpoints in it.</summary>
    ExecDone,

    /// <summary>The stop <see cref="ITracedProcess.RequestStop"/> asked for.</summary>
    Interrupted,

    /// <summary>A signal is about to be delivered; <see cref="ITracedProcess.Resume"/> delivers it.</summary>
    Signal,
}

/// <summary>How a process ended: exit code or terminating signal.</summary>
public readonly record struct ExitStatus(int Code, int Signal, bool CoreDumped = false)
{
    public bool Signaled => Signal != 0;

    public static ExitStatus FromCode(int code) => new(code, 0);

    public static ExitStatus FromSignal(int signal, bool coreDumped = false) => new(0, signal, coreDumped);

    public override string ToString() => Signaled ? $"killed by signal {Signal}" : $"exited with status {Code}";
}
