using Sys = ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux.Simulation.Kernel;

/// <summary>Thread exit, reaping and exec (kernel/exit.c, fs/exec.c de_thread).</summary>
internal sealed partial class FakeLinuxKernel
{
    /// <summary>
    /// do_exit and exit_notify: a traced thread stays a zombie for its tracer to reap; an untraced non-leader is
    /// reaped at once; a leader waits as a zombie until its group is otherwise empty.
    /// </summary>
    private void ExitTask(FakeTask t, int status)
    {
        if (t.Has(JobControl.StopPending))
        {
            ParticipateInGroupStop(t);
        }

        t.Jobctl = JobControl.None;
        t.Continuation = null;
        t.StopSignalToDeliver = 0;
        if (t.Group.ExecTask == t)
        {
            // de_thread's "killed:" path: a fatal signal while exec waits for the other threads to die fails the
            // exec (-EAGAIN) and clears group_exec_task, so the group is reaped like any other once it is empty.
            // Left set, the zombie leader would never go back to its real parent (linux simulation seed 5025).
            t.Group.ExecTask = null;
        }

        t.State = TaskState.Zombie;
        t.ExitStatus = status;
        Trace($"{t.Tid} exits (status 0x{status:x})");
        if (t.IsLeader || t.Group.Live.All(o => o == t))
        {
            t.Group.BorrowsMemory = false;
        }

        if (t.Traced)
        {
            t.Report = status;
        }
        else if (!t.IsLeader)
        {
            Release(t);
        }

        ReapGroupIfDone(t.Group);
    }

    /// <summary>release_task: the thread is gone from every table.</summary>
    private void Release(FakeTask t)
    {
        t.State = TaskState.Dead;
        t.Group.Tasks.Remove(t);
        _tracees.Remove(t);
        if (_tasks.GetValueOrDefault(t.Tid) == t)
        {
            _tasks.Remove(t.Tid);
        }

        ReapGroupIfDone(t.Group);
    }

    /// <summary>
    /// Once only an untraced zombie leader is left, the real parent (init, in the fake) reaps the process at once.
    /// </summary>
    private void ReapGroupIfDone(FakeThreadGroup group)
    {
        if (group.Tasks.Count == 1 && group.Tasks[0] is { IsLeader: true, State: TaskState.Zombie, Traced: false } leader && group.ExecTask is null)
        {
            Release(leader);
            _groups.Remove(group.Pid);
        }
        else if (group.Tasks.Count == 0)
        {
            _groups.Remove(group.Pid);
        }
    }

    /// <summary>delay_group_leader: a zombie leader is not reported while other threads of its group remain.</summary>
    private static bool IsDelayedLeader(FakeTask t) => t.IsLeader && t.Group.Tasks.Count > 1;

    /// <summary>
    /// de_thread: every other thread is killed (each reports exit 0 to the tracer) and exec waits, state D, until
    /// they are reaped and the old leader is a zombie. A non-leader then takes the leader's tid; with TRACEEXEC
    /// it stops at PTRACE_EVENT_EXEC, the message being its former tid.
    /// </summary>
    private void BeginExec(FakeTask t, FakeImage image)
    {
        var group = t.Group;
        var others = group.Live.Where(o => o != t).ToList();
        if (others.Count == 0)
        {
            FinishExec(t, image);
            return;
        }

        group.ExecTask = t;
        foreach (var other in others)
        {
            WakeToDie(other);
        }

        t.State = TaskState.Blocked;
        t.WaitCondition = () => group.Tasks.All(o => o == t || (o.IsLeader && o.State == TaskState.Zombie));
        t.WhenUnblocked = () => FinishExec(t, image);
        Trace($"{t.Tid} execs: waits for {others.Count} threads to die");
    }

    private void FinishExec(FakeTask t, FakeImage image)
    {
        var group = t.Group;
        var formerTid = t.Tid;
        if (!t.IsLeader && group.Leader is { } oldLeader)
        {
            Release(oldLeader);
            _tasks.Remove(formerTid);
            t.Tid = group.Pid;
            _tasks[t.Tid] = t;
        }

        group.ExecTask = null;
        group.Image = image;
        group.Memory = image.Load();
        group.BorrowsMemory = false;
        t.Rip = image.Entry;
        t.Ticks = 0;
        Trace($"{formerTid} exec done as {t.Tid}");
        EnterEventStop(t, Sys.PTRACE_EVENT_EXEC, Sys.PTRACE_O_TRACEEXEC, (ulong)formerTid);
    }
}
