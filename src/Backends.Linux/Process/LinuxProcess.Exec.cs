using ProcHex.Ports;
using static ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux;

/// <summary>
/// An exec of <see cref="LinuxProcess"/>, seen or unseen, and whether the new image can still be observed. Owner only.
/// </summary>
internal sealed partial class LinuxProcess
{
    private void OnExec()
    {
        _owner.AssertCurrent();
        // The kernel reports the exec on the leader's tid whichever thread called it; the others are gone.
        foreach (var other in _threads.Keys.Where(t => t != Pid).ToArray())
        {
            _threads.Remove(other);
            _owner.Unregister(other);
        }

        if (!_threads.ContainsKey(Pid))
        {
            AddThread(Pid, running: false);
        }

        lock (_eventLock)
        {
            // Events of the threads exec just destroyed can no longer be handled (their tids are gone). The leader's
            // are the old leader's: a thread with an event queued is held, so it cannot have called exec itself; the
            // thread that did took over the tid (see TakeLeaderStatus).
            _mailbox.RemoveWhere(static thread => thread is not null, static thread => Interlocked.Decrement(ref thread!.Undelivered));
        }

        // The leader's entry may be the old leader's, which exec replaced with the thread that called it: whatever
        // group-stop it was in is over (nobody stops in the middle of an exec).
        var leader = _threads[Pid];
        leader.Running = false;
        leader.InjectSignal = 0;
        Apply(_stops.Exec());

        // A fork or vfork event of a thread the exec destroyed is lost: its child, ours and stopped, is let go here.
        LetGoOfOrphanedForkChildren(afterExec: true);
        _traps.Clear();
        _counters.ForgetImage();
        _stepOver.ForgetImage();
        _memory.Reopen();
        _pendingStep = null;
        lock (_eventLock)
        {
            // Under the lock: a stop the core takes from now on is the new image's (see ResumeOnOwner).
            _execs++;
        }
        var pc = GetRegs(Pid).rip;
        if (CheckObservable(pc))
        {
            Deliver(StopEvent.Stopped(StopReason.ExecDone, Pid, pc), leader);
        }
    }

    /// <summary>The message of the lost path (S2) when an exec leaves us a process we cannot observe.</summary>
    internal const string UnobservableMessage = "process exec'd set-id or unobservable program";

    /// <summary>
    /// After an exec (the trampoline's included): may we, as this victim's tracer, still access the new image?
    /// Linux never lets a set-id program gain privileges under a tracer that is not privileged to trace it (the
    /// kernel runs it with the old ids, and we keep full control: no loss). But an image the exec'ing process may
    /// not read (execute-only, set-id or not) makes it non-dumpable: ptrace stays attached, yet the kernel refuses
    /// every memory access of an unprivileged tracer, so nothing can be read or planted. That is control lost,
    /// reported as <see cref="StopKind.Lost"/> with the S2 message; the victim stays stopped until released. So is
    /// an image that is not x86-64 (issue 17 item 4), with a message that names its architecture.
    /// The probe is PTRACE_PEEKDATA, which checks the credentials we attached with. Owner only.
    /// </summary>
    internal bool CheckObservable(ulong pc)
    {
        _owner.AssertCurrent();
        if (ArchitectureCheck.Foreign(Kernel, Pid) is { } architecture)
        {
            // An exec into a program that is not x86-64 (issue 17 item 4): nothing of it can be read or planted right.
            _lost = true;
            _stops.Hold();
            Deliver(StopEvent.Lost(Pid, $"process exec'd a program of an unsupported architecture: {architecture}"), null);
            return false;
        }

        var error = TryPeekData(Pid, pc);
        if (error is 0 or Interop.Errno.ESRCH)
        {
            return true;
        }

        Log.BestEffortFailed(_logger, Pid, "reading the new image", DescribeError(error));
        _lost = true;
        _stops.Hold();
        Deliver(StopEvent.Lost(Pid, UnobservableMessage), null);
        return false;
    }

    /// <summary>The message of the lost path when the victim exec'd and we never saw the exec's stop.</summary>
    internal const string ExecUnseenMessage = "process exec'd in a thread other than the leader while the leader was being resumed: its exec went unseen";

    /// <summary>
    /// The memory file met a dead address space (<see cref="MemoryFile"/>): the process is dying, or it exec'd and the
    /// exec's stop went unseen. That happens when another thread's exec completes between the WNOHANG check for the
    /// leader's tid (<see cref="TakeLeaderStatus"/>) and the PTRACE_CONT we meant for the old leader's stop: the
    /// thread that exec'd holds the leader's tid by then, stopped in PTRACE_EVENT_EXEC, and the CONT resumes it,
    /// dropping the report (ptrace_resume clears exit_code). No check before the CONT can close that window, and
    /// PTRACE_O_TRACEEXIT cannot stop the old leader on its way out (ptrace_stop skips a task with SIGKILL pending).
    /// An exec leaves a sign that dying does not: the thread that called it left its own tid without a report to
    /// us (ptrace(2), "execve(2) under ptrace"), where a dying thread stays in /proc/PID/task until we reap it. With
    /// that sign the victim is reported lost, and its traps are forgotten, since they went with the old image.
    /// Owner only.
    /// </summary>
    private void OnImageGone()
    {
        _owner.AssertCurrent();
        if (_dead || _lost)
        {
            return;
        }

        var live = Kernel.Threads(Pid);
        List<VictimThread>? vanished = null;
        foreach (var thread in _threads.Values)
        {
            if (thread.Tid != Pid && !live.Contains(thread.Tid) && !_owner.HasPendingStatus(thread.Tid))
            {
                (vanished ??= []).Add(thread);
            }
        }

        if (vanished is null || live.Count == 0)
        {
            return;
        }

        foreach (var thread in vanished)
        {
            ThreadEnded(thread, new WaitStatus(0)); // its old tid left without a report: it is the thread that exec'd
        }

        Log.BestEffortFailed(_logger, Pid, "following the victim", ExecUnseenMessage);

        // As at an exec we see: a fork child of a thread the exec destroyed is let go without the old image's traps,
        // which only this table still knows (linux simulation seed 3871).
        LetGoOfOrphanedForkChildren(afterExec: true);
        _traps.Clear();
        _counters.ForgetImage();
        _pendingStep = null;
        _lost = true;
        _stops.Hold();
        Deliver(StopEvent.Lost(Pid, ExecUnseenMessage), null);
    }
}
