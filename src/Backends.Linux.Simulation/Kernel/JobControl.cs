namespace ProcHex.Backends.Linux.Simulation.Kernel;

/// <summary>
/// The bits of task->jobctl (include/linux/sched/jobctl.h) the fake models. The stop signal
/// (JOBCTL_STOP_SIGMASK) is kept apart, in <see cref="FakeTask.StopSignal"/>.
/// </summary>
[Flags]
internal enum JobControl
{
    None = 0,

    /// <summary>A stop signal was dequeued; a SIGCONT meanwhile clears it and cancels the stop it would start.</summary>
    StopDequeued = 1 << 16,

    /// <summary>This task has yet to take part in the group stop.</summary>
    StopPending = 1 << 17,

    /// <summary>Taking part consumes one of the group's group_stop_count.</summary>
    StopConsume = 1 << 18,

    /// <summary>A PTRACE_EVENT_STOP trap is due (PTRACE_INTERRUPT, a seized new task, a ptraced group stop).</summary>
    TrapStop = 1 << 19,

    /// <summary>The group-stop state changed under a seized task: it must re-trap to tell its tracer.</summary>
    TrapNotify = 1 << 20,

    /// <summary>PTRACE_LISTEN: still in its trap, but not reported by wait and woken by TrapNotify.</summary>
    Listening = 1 << 22,

    TrapMask = TrapStop | TrapNotify,

    /// <summary>JOBCTL_PENDING_MASK: what a fatal signal or an exec clears.</summary>
    PendingMask = StopPending | StopConsume | TrapMask,
}
