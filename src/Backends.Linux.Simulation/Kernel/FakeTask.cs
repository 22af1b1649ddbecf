namespace ProcHex.Backends.Linux.Simulation.Kernel;

/// <summary>
/// A thread (a task_struct): its scheduling state, job-control bits, private signal queue, ptrace link and
/// registers. Transitions that involve other tasks live in <see cref="FakeLinuxKernel"/>.
/// </summary>
internal sealed class FakeTask
{
    private Interop.UserRegs _regs;

    public FakeTask(int tid, FakeThreadGroup group, ulong rip)
    {
        Tid = tid;
        Group = group;
        _regs.rip = rip;
    }

    /// <summary>The thread id; an exec from a non-leader thread gives it the leader's.</summary>
    public int Tid { get; set; }

    public FakeThreadGroup Group { get; }

    public bool IsLeader => Tid == Group.Pid;

    public TaskState State { get; set; }

    public bool IsAlive => State is not (TaskState.Zombie or TaskState.Dead);

    public JobControl Jobctl { get; set; }

    /// <summary>JOBCTL_STOP_SIGMASK: the signal of the latest group stop, reported by its PTRACE_EVENT_STOP.</summary>
    public int StopSignal { get; set; }

    public SignalQueue Pending { get; } = new();

    /// <summary>PT_PTRACED|PT_SEIZED: the fake only attaches with PTRACE_SEIZE.</summary>
    public bool Traced { get; set; }

    public int Options { get; set; }

    public PtraceStop? Stop { get; set; }

    /// <summary>The wait status the tracer has yet to collect (a stop's exit_code, or a zombie's status).</summary>
    public int? Report { get; set; }

    /// <summary>How a zombie ended (its wait status).</summary>
    public int ExitStatus { get; set; }

    /// <summary>The kernel path to finish on this task's next turn (a signal to deliver, a vfork to wait for).</summary>
    public Action? Continuation { get; set; }

    /// <summary>
    /// A stop signal the tracer's resume gave it from a signal-delivery-stop, which <see cref="Continuation"/> is
    /// still to act on (do_signal_stop at its next turn); 0 otherwise.
    /// </summary>
    public int StopSignalToDeliver { get; set; }

    /// <summary>While <see cref="TaskState.Blocked"/>: when it may go on, and what it then does.</summary>
    public Func<bool>? WaitCondition { get; set; }

    public Action? WhenUnblocked { get; set; }

    /// <summary>TIF_SINGLESTEP: trap after the next step.</summary>
    public bool SingleStepping { get; set; }

    /// <summary>Turns spent in the current Compute or Sleep step.</summary>
    public int Ticks { get; set; }

    /// <summary>Turns of user-space work done: the observable "makes progress".</summary>
    public long Progress { get; set; }

    public ulong Rip
    {
        get => _regs.rip;
        set => _regs.rip = value;
    }

    public Interop.UserRegs Registers
    {
        get => _regs;
        set => _regs = value;
    }

    public bool Has(JobControl bits) => (Jobctl & bits) != 0;

    public bool IsListening => Has(JobControl.Listening);

    public bool IsSeized => Traced;

    /// <summary>task_clear_jobctl_pending: clearing STOP_PENDING also clears CONSUME and DEQUEUED.</summary>
    public void ClearJobctl(JobControl bits)
    {
        if ((bits & JobControl.StopPending) != 0)
        {
            bits |= JobControl.StopConsume | JobControl.StopDequeued;
        }

        Jobctl &= ~bits;
    }

    /// <summary>task_set_jobctl_pending: refused once the task is dying; a stop signal replaces the recorded one.</summary>
    public bool SetJobctl(JobControl bits, int stopSignal = 0)
    {
        if (!IsAlive || Group.IsDoomed(this))
        {
            return false;
        }

        if (stopSignal != 0)
        {
            StopSignal = stopSignal;
        }

        Jobctl |= bits;
        return true;
    }

    /// <summary>Leaves TASK_TRACED (a resume, a wake-up from LISTEN, a detach): its report goes with it.</summary>
    public PtraceStop? LeaveStop()
    {
        var stop = Stop;
        Stop = null;
        Report = null;
        Jobctl &= ~JobControl.Listening;
        State = TaskState.Running;
        return stop;
    }

    public override string ToString() => $"task {Tid} ({State})";
}
