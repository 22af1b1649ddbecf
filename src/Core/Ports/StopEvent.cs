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
    /// <summary>A stop of thread <paramref name="threadId"/> for <paramref name="reason"/>.</summary>
    /// <param name="reason">Why it stopped.</param>
    /// <param name="threadId">The thread that stopped.</param>
    /// <param name="pc">Where, adjusted to the breakpoint's address for a breakpoint.</param>
    public static StopEvent Stopped(StopReason reason, int threadId, ulong pc = 0) =>
        new(StopKind.Stopped, reason, threadId, pc);

    /// <summary>The victim <paramref name="pid"/> ended with <paramref name="status"/>.</summary>
    /// <param name="pid">The victim.</param>
    /// <param name="status">Its exit status or terminating signal.</param>
    public static StopEvent Exited(int pid, ExitStatus status) =>
        new(StopKind.Exited, StopReason.None, pid, 0, status);

    /// <summary>Control of <paramref name="pid"/> is gone, for the reason in <paramref name="message"/>.</summary>
    /// <param name="pid">The victim.</param>
    /// <param name="message">Why, in words.</param>
    public static StopEvent Lost(int pid, string message) =>
        new(StopKind.Lost, StopReason.None, pid, 0, default, message);
}

/// <summary>What a wait for the victim found.</summary>
public enum StopKind
{
    /// <summary>A thread stopped; <see cref="StopEvent.Reason"/> says why.</summary>
    Stopped,

    /// <summary>The victim is dead (undead until reaped); the control loop ends.</summary>
    Exited,

    /// <summary>Control is gone (exec of a set-id program, detached by force); the control loop ends.</summary>
    Lost,
}

/// <summary>Why a thread stopped.</summary>
public enum StopReason
{
    /// <summary>Not a stop (the victim exited or control was lost).</summary>
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
    /// <summary>True when a signal ended the process rather than exit().</summary>
    public bool Signaled => Signal != 0;

    /// <summary>A normal exit with status <paramref name="code"/>.</summary>
    /// <param name="code">The exit status (0 to 255).</param>
    public static ExitStatus FromCode(int code) => new(code, 0);

    /// <summary>Death by signal <paramref name="signal"/>.</summary>
    /// <param name="signal">The signal number.</param>
    /// <param name="coreDumped">Whether the kernel wrote a core dump.</param>
    public static ExitStatus FromSignal(int signal, bool coreDumped = false) => new(0, signal, coreDumped);

    /// <inheritdoc/>
    public override string ToString() => Signaled ? $"killed by signal {Signal}" : $"exited with status {Code}";
}
