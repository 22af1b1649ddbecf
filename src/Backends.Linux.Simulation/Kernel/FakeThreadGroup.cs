namespace ProcHex.Backends.Linux.Simulation.Kernel;

/// <summary>
/// A process (a signal_struct with its threads): shared signal queue, group-stop bookkeeping, the group exit or
/// exec in progress, memory and image.
/// </summary>
internal sealed class FakeThreadGroup
{
    public FakeThreadGroup(int pid, FakeImage image, FakeMemory memory)
    {
        Pid = pid;
        Image = image;
        Memory = memory;
    }

    public int Pid { get; }

    /// <summary>The real parent's pid (field 4 of /proc/PID/stat): init for a spawned process, the forker for a child.</summary>
    public int Parent { get; init; }

    public FakeImage Image { get; set; }

    public FakeMemory Memory { get; set; }

    /// <summary>Threads not yet reaped, in creation order (the leader first while it exists).</summary>
    public List<FakeTask> Tasks { get; } = [];

    public SignalQueue SharedPending { get; } = new();

    /// <summary>group_stop_count: tasks yet to take part in the group stop under way.</summary>
    public int GroupStopCount { get; set; }

    /// <summary>SIGNAL_STOP_STOPPED: the group stop completed and no SIGCONT has come since.</summary>
    public bool StopStopped { get; set; }

    /// <summary>SIGNAL_GROUP_EXIT: the status every thread dies with, once a fatal signal or exit_group came.</summary>
    public int? GroupExitStatus { get; set; }

    /// <summary>group_exec_task: the thread in execve, for which every other thread is dying.</summary>
    public FakeTask? ExecTask { get; set; }

    /// <summary>
    /// Stop signals the kernel itself dropped: dequeued by a thread that exec's de_thread or a group exit killed
    /// before it could act on them (in its signal-delivery-stop, or resumed with it and not yet run). Not kernel
    /// state: it lets the simulation tell a stop nobody could have kept from one the tracer ended.
    /// </summary>
    public int StopSignalsLost { get; set; }

    /// <summary>A vfork child borrowing its parent's memory, until it execs or exits.</summary>
    public bool BorrowsMemory { get; set; }

    public FakeTask? Leader => Tasks.Find(t => t.IsLeader);

    public IEnumerable<FakeTask> Live => Tasks.Where(t => t.IsAlive);

    /// <summary>A task that must die at its next turn: a group exit, or an exec by another thread.</summary>
    public bool IsDoomed(FakeTask task) => GroupExitStatus is not null || (ExecTask is not null && ExecTask != task);

    public bool IsExiting => GroupExitStatus is not null;
}
