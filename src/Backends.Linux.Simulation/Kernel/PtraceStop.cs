namespace ProcHex.Backends.Linux.Simulation.Kernel;

/// <summary>What kind of ptrace stop a task is in (ptrace(2), "Stopped states").</summary>
internal enum StopKind
{
    /// <summary>A dequeued signal, offered to the tracer before its delivery.</summary>
    SignalDelivery,

    /// <summary>PTRACE_EVENT_STOP with a stop signal: this task's part of a group stop.</summary>
    GroupStop,

    /// <summary>PTRACE_EVENT_STOP with SIGTRAP: PTRACE_INTERRUPT, a new task's first stop, a re-trap after a notify.</summary>
    TrapStop,

    /// <summary>PTRACE_EVENT_CLONE, FORK, VFORK, VFORK_DONE or EXEC.</summary>
    Event,
}

/// <summary>
/// A task's current ptrace stop: the kernel's exit_code (what wait reports), last_siginfo and ptrace_message,
/// plus <see cref="After"/>, the rest of the kernel path the task was on (it runs once the task is resumed).
/// </summary>
internal sealed record PtraceStop(StopKind Kind, int ExitCode, SigInfo SigInfo, ulong Message, Action? After)
{
    public bool IsEventStop => SigInfo.Code >> 8 == ProcHex.Backends.Linux.Interop.Sys.PTRACE_EVENT_STOP;
}
