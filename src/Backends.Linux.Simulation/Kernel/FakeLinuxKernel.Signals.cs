using Sys = ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux.Simulation.Kernel;

/// <summary>Sending signals and group-stop bookkeeping (kernel/signal.c).</summary>
internal sealed partial class FakeLinuxKernel
{
    /// <summary>kill(2) from the tracer: 0 or the errno.</summary>
    public int Kill(int pid, int signal) => Kill(pid, signal, TracerPid);

    /// <summary>tgkill(2) from the tracer: 0 or the errno.</summary>
    public int Tgkill(int tgid, int tid, int signal)
    {
        if (!Abi.IsValidSignal(signal))
        {
            return Interop.Errno.EINVAL;
        }

        if (Find(tid) is not { IsAlive: true } t || t.Group.Pid != tgid)
        {
            return Interop.Errno.ESRCH;
        }

        Trace($"tgkill({tgid}, {tid}, {signal})");
        SendSignal(t, new SigInfo(signal, Abi.SI_TKILL, TracerPid), shared: false);
        return 0;
    }

    /// <summary>The outsider will kill(<paramref name="pid"/>, <paramref name="signal"/>) at an instant of the scheduler's choosing.</summary>
    public void ScheduleKill(int pid, int signal) =>
        Outsider.Enqueue($"kill({pid}, {signal})", () => Kill(pid, signal, Outsider.Pid));

    private int Kill(int pid, int signal, int sender)
    {
        if (!Abi.IsValidSignal(signal))
        {
            return Interop.Errno.EINVAL;
        }

        if (!_groups.TryGetValue(pid, out var group) || group.Leader is not { } leader || !group.Live.Any())
        {
            return Interop.Errno.ESRCH;
        }

        Trace($"kill({pid}, {signal}) from {sender}");
        SendSignal(leader, new SigInfo(signal, Abi.SI_USER, sender), shared: true);
        return 0;
    }

    /// <summary>send_signal_locked: prepare_signal, then queue, or for SIGKILL the group exit (complete_signal).</summary>
    private void SendSignal(FakeTask target, SigInfo info, bool shared)
    {
        if (info.Signo == 0 || !PrepareSignal(target, info.Signo))
        {
            return;
        }

        if (info.Signo == Sys.SIGKILL)
        {
            StartGroupExit(target.Group, WaitStatus.Killed(Sys.SIGKILL));
            return;
        }

        (shared ? target.Group.SharedPending : target.Pending).Enqueue(info);
    }

    /// <summary>
    /// prepare_signal: a stop signal flushes pending SIGCONTs; SIGCONT flushes pending stop signals, ends the
    /// group stop, wakes untraced stopped threads and makes seized ones re-trap to report the change. Returns
    /// whether the signal is still to be queued: not if the group is dying, nor if it is ignored, which a
    /// traced task's signals never are (sig_ignored).
    /// </summary>
    private bool PrepareSignal(FakeTask target, int signal)
    {
        var group = target.Group;
        if (group.IsExiting)
        {
            return false;
        }

        if (Abi.IsStopSignal(signal))
        {
            FlushEverywhere(group, s => s == Sys.SIGCONT);
        }
        else if (signal == Sys.SIGCONT)
        {
            Continue(group);
        }

        return target.Traced || signal == Sys.SIGKILL || !Abi.IsIgnoredByDefault(signal);
    }

    private void Continue(FakeThreadGroup group)
    {
        FlushEverywhere(group, Abi.IsStopSignal);
        foreach (var t in group.Tasks)
        {
            t.ClearJobctl(JobControl.StopPending);
            if (t.Traced)
            {
                TrapNotify(t);
            }
            else if (t.State == TaskState.Stopped)
            {
                t.State = TaskState.Running;
            }
        }

        group.StopStopped = false;
        group.GroupStopCount = 0;
    }

    private static void FlushEverywhere(FakeThreadGroup group, Func<int, bool> which)
    {
        group.SharedPending.Flush(which);
        foreach (var t in group.Tasks)
        {
            t.Pending.Flush(which);
        }
    }

    /// <summary>ptrace_trap_notify: a seized task must re-trap; one that is listening is woken to do it now.</summary>
    private void TrapNotify(FakeTask t)
    {
        if (t.SetJobctl(JobControl.TrapNotify) && t.IsListening)
        {
            WakeFromListen(t);
        }
    }

    private void WakeFromListen(FakeTask t)
    {
        Trace($"{t.Tid} woken from LISTEN");
        t.LeaveStop();
    }

    /// <summary>
    /// do_signal_stop: the first stop signal dequeued (and not cancelled by a SIGCONT since) starts a group stop,
    /// marking every other thread not already stopped. An untraced task then stops (true); a traced one gets a
    /// STOP trap to report the stop to its tracer, which the caller takes next (false).
    /// </summary>
    private bool DoSignalStop(FakeTask t, int signal)
    {
        var group = t.Group;
        if (!t.Has(JobControl.StopPending))
        {
            if (!t.Has(JobControl.StopDequeued) || group.IsDoomed(t))
            {
                return false;
            }

            StartGroupStop(t, signal);
        }

        if (!t.Traced)
        {
            ParticipateInGroupStop(t);
            t.State = TaskState.Stopped;
            Trace($"{t.Tid} group-stopped (T)");
            return true;
        }

        t.SetJobctl(JobControl.TrapStop);
        return false;
    }

    private void StartGroupStop(FakeTask initiator, int signal)
    {
        var group = initiator.Group;
        const JobControl Stop = JobControl.StopPending | JobControl.StopConsume;
        group.GroupStopCount = initiator.SetJobctl(Stop, signal) ? 1 : 0;
        foreach (var other in group.Tasks.Where(o => o != initiator && o.State != TaskState.Stopped))
        {
            if (other.SetJobctl(Stop, signal))
            {
                group.GroupStopCount++;
                if (other.Traced)
                {
                    TrapNotify(other);
                }
            }
        }

        Trace($"{initiator.Tid} starts a group stop ({signal}), {group.GroupStopCount} to stop");
    }

    /// <summary>task_participate_group_stop: consume one count; the last one completes the stop (SIGNAL_STOP_STOPPED).</summary>
    private static void ParticipateInGroupStop(FakeTask t)
    {
        var consume = t.Has(JobControl.StopConsume);
        t.ClearJobctl(JobControl.StopPending);
        if (!consume)
        {
            return;
        }

        var group = t.Group;
        group.GroupStopCount = Math.Max(0, group.GroupStopCount - 1);
        if (group.GroupStopCount == 0)
        {
            group.StopStopped = true;
        }
    }

    /// <summary>task_join_group_stop: a thread born while its group stops takes part in the stop too.</summary>
    private static void JoinGroupStop(FakeTask child, FakeTask parent)
    {
        var group = parent.Group;
        if (group.GroupStopCount > 0)
        {
            group.GroupStopCount++;
            child.SetJobctl(JobControl.StopPending | JobControl.StopConsume, parent.StopSignal);
        }
        else if (group.StopStopped)
        {
            child.SetJobctl(JobControl.StopPending, parent.StopSignal);
        }
    }

    /// <summary>
    /// complete_signal's fatal path and do_group_exit: every thread is marked to die with
    /// <paramref name="status"/> and woken, whatever stop it is in; the group stop is over.
    /// </summary>
    private void StartGroupExit(FakeThreadGroup group, int status)
    {
        if (group.IsExiting)
        {
            return;
        }

        Trace($"group {group.Pid} exits (status 0x{status:x})");
        group.GroupExitStatus = status;
        group.GroupStopCount = 0;
        foreach (var t in group.Live)
        {
            WakeToDie(t);
        }
    }

    /// <summary>
    /// signal_wake_up(t, 1) for SIGKILL or exec's zap: out of any stop or killable wait. A stop signal the task had
    /// dequeued dies with it: its signal-delivery-stop is over, and the stop the tracer's resume gave it is never
    /// started (do_signal_stop refuses once SIGNAL_GROUP_EXIT or group_exec_task is set, and get_signal goes
    /// straight to the group exit).
    /// </summary>
    private static void WakeToDie(FakeTask t)
    {
        if (t.StopSignalToDeliver != 0 || t.Stop is { Kind: StopKind.SignalDelivery } s && Abi.IsStopSignal(s.SigInfo.Signo))
        {
            t.Group.StopSignalsLost++;
        }

        t.StopSignalToDeliver = 0;
        t.ClearJobctl(JobControl.PendingMask);
        if (t.State is TaskState.Traced or TaskState.Stopped or TaskState.Blocked)
        {
            t.LeaveStop();
            t.Continuation = null;
        }
    }
}
