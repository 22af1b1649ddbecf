namespace ProcHex.Backends.Linux.Tests.StopByOthersModel;

/// <summary>
/// Just enough of the kernel's job control under PTRACE_SEIZE to drive <see cref="StopByOthers"/> through every
/// interleaving: per thread, running / in a ptrace stop / listening / gone, the pending group-stop
/// (JOBCTL_STOP_PENDING) and notice (JOBCTL_TRAP_NOTIFY) bits, and the one report a stopped thread has for the
/// tracer. Each rule names its kernel source (kernel/signal.c, kernel/ptrace.c) or ptrace(2).
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1822", Justification = "System calls are made on the kernel, as on the real one.")]
internal sealed class KernelModel
{
    public enum State
    {
        Running,
        Trapped,
        Listening,
        Gone,
    }

    public enum Report
    {
        None,
        GroupStop,
        TrapStop,
        Exited,
    }

    public sealed class Task(int tid)
    {
        public int Tid { get; } = tid;

        public State State { get; set; } = State.Running;

        public bool StopPending { get; set; }

        public bool Notify { get; set; }

        /// <summary>The report waitpid would return; readable only while not listening (task_stopped_code).</summary>
        public Report Unread { get; set; }

        public bool ExitKill { get; set; } = true;

        /// <summary>Stopped for the group-stop (the last report was one) and not resumed since.</summary>
        public bool InGroupStopTrap { get; set; }

        public string Signature =>
            $"{Tid}{State.ToString()[0]}{(StopPending ? "p" : "")}{(Notify ? "n" : "")}{Unread.ToString()[0]}{(ExitKill ? "k" : "")}{(InGroupStopTrap ? "g" : "")}";
    }

    public List<Task> Tasks { get; } = [];

    /// <summary>group_stop_count != 0 or SIGNAL_STOP_STOPPED: someone else's stop is in effect.</summary>
    public bool GroupStop { get; private set; }

    public string Signature => $"{(GroupStop ? "S" : "-")}|{string.Join(",", Tasks.Select(t => t.Signature))}";

    public Task Spawn(int tid)
    {
        // ptrace_init_task: a seized child gets JOBCTL_TRAP_STOP (its first stop is an event stop);
        // task_join_group_stop: born into a stop in effect, it joins it.
        var task = new Task(tid) { Notify = true, StopPending = GroupStop };
        Tasks.Add(task);
        return task;
    }

    /// <summary>kill(SIGSTOP) once a thread dequeued it: do_signal_stop sets STOP_PENDING on every thread and
    /// ptrace_trap_notify()s the seized ones, waking those in PTRACE_LISTEN.</summary>
    public void SendStop()
    {
        GroupStop = true;
        foreach (var t in Live)
        {
            t.StopPending = true;
            TrapNotify(t);
        }
    }

    /// <summary>kill(SIGCONT): prepare_signal clears STOP_PENDING everywhere and ptrace_trap_notify()s every seized thread.</summary>
    public void SendCont()
    {
        GroupStop = false;
        foreach (var t in Live)
        {
            t.StopPending = false;
            TrapNotify(t);
        }
    }

    /// <summary>A running thread reaches get_signal(): a pending stop or notice makes it trap and report.</summary>
    public bool CanStep(Task t) => t.State == State.Running && (t.StopPending || t.Notify);

    public void Step(Task t)
    {
        // do_jobctl_trap: under a group-stop the report carries the stop signal, else SIGTRAP; ptrace_stop: a
        // STOP trap clears NOTIFY. A thread with STOP_PENDING participates in the group-stop (do_signal_stop).
        var groupStop = GroupStop;
        t.StopPending = false;
        t.Notify = false;
        t.State = State.Trapped;
        t.InGroupStopTrap = groupStop;
        t.Unread = groupStop ? Report.GroupStop : Report.TrapStop;
    }

    public bool CanExit(Task t) => t.State == State.Running;

    public void Exit(Task t)
    {
        t.State = State.Gone;
        t.Unread = Report.Exited;
    }

    /// <summary>What waitpid returns for this thread now, consuming it.</summary>
    public Report Read(Task t)
    {
        var report = t.Unread;
        t.Unread = Report.None;
        return report;
    }

    public bool Readable(Task t) => t.Unread != Report.None && t.State != State.Listening;

    /// <summary>PTRACE_CONT: only on a thread in a ptrace stop (ESRCH otherwise); a seized thread leaves even a group-stop.</summary>
    public bool Cont(Task t)
    {
        if (t.State != State.Trapped)
        {
            return false;
        }

        t.State = State.Running;
        t.InGroupStopTrap = false;
        return true;
    }

    /// <summary>
    /// PTRACE_LISTEN (ptrace_request): only on an event stop (every stop in this model is one); sets JOBCTL_LISTENING
    /// and, with a notice already pending, wakes the thread at once to re-trap.
    /// </summary>
    public bool Listen(Task t)
    {
        if (t.State != State.Trapped)
        {
            return false;
        }

        t.State = State.Listening;
        if (t.Notify)
        {
            Wake(t);
        }

        return true;
    }

    /// <summary>PTRACE_SETOPTIONS: only on a thread in a ptrace stop (a listening one takes no requests).</summary>
    public void SetExitKill(Task t, bool on)
    {
        if (t.State == State.Trapped)
        {
            t.ExitKill = on;
        }
    }

    private IEnumerable<Task> Live => Tasks.Where(t => t.State != State.Gone);

    private static void TrapNotify(Task t)
    {
        t.Notify = true;
        if (t.State == State.Listening)
        {
            Wake(t);
        }
    }

    private static void Wake(Task t)
    {
        // ptrace_signal_wake_up(resume): it leaves ptrace_stop and, back in get_signal, takes the notice.
        t.State = State.Running;
        t.InGroupStopTrap = false;
    }
}
