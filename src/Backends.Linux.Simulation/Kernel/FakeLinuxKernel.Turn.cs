using Sys = ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux.Simulation.Kernel;

/// <summary>
/// One turn of a runnable task: what the kernel does on its way back to user space (get_signal in
/// kernel/signal.c), or else one step of its program. Every stop ends the turn, so other actors can act between
/// any two of the kernel's siglock sections.
/// </summary>
internal sealed partial class FakeLinuxKernel
{
    private void RunTurn(FakeTask t)
    {
        if (t.Group.IsDoomed(t))
        {
            ExitTask(t, t.Group.GroupExitStatus ?? WaitStatus.Exited(0));
        }
        else if (t.State == TaskState.Blocked)
        {
            Unblock(t);
        }
        else if (t.Continuation is { } rest)
        {
            t.Continuation = null;
            rest();
        }
        else if (!DoSignalWork(t))
        {
            ExecuteStep(t);
        }
    }

    private static void Unblock(FakeTask t)
    {
        var then = t.WhenUnblocked;
        t.State = TaskState.Running;
        t.WaitCondition = null;
        t.WhenUnblocked = null;
        then?.Invoke();
    }

    /// <summary>
    /// get_signal's loop, one round: a pending group stop, then a due job-control trap, then the next signal
    /// (synchronous faults first, then the private queue, then the shared one). False when there was nothing to do.
    /// </summary>
    private bool DoSignalWork(FakeTask t)
    {
        if (t.Has(JobControl.StopPending) && DoSignalStop(t, 0))
        {
            return true;
        }

        if (t.Has(JobControl.TrapMask))
        {
            DoJobControlTrap(t);
            return true;
        }

        if (DequeueSignal(t) is not { } info)
        {
            return false;
        }

        if (t.Traced)
        {
            EnterSignalDeliveryStop(t, info);
        }
        else
        {
            DeliverSignal(t, info.Signo);
        }

        return true;
    }

    private static SigInfo? DequeueSignal(FakeTask t)
    {
        var info = t.Pending.DequeueSynchronous() ?? t.Pending.Dequeue() ?? t.Group.SharedPending.Dequeue();
        if (info is { } dequeued && Abi.IsStopSignal(dequeued.Signo))
        {
            t.SetJobctl(JobControl.StopDequeued);
        }

        return info;
    }

    /// <summary>
    /// do_jobctl_trap for a seized task: PTRACE_EVENT_STOP with the group's stop signal while a group stop is
    /// under way or in effect, else with SIGTRAP.
    /// </summary>
    private void DoJobControlTrap(FakeTask t)
    {
        var group = t.Group;
        var inGroupStop = group.GroupStopCount > 0 || group.StopStopped;
        var signal = inGroupStop && t.StopSignal != 0 ? t.StopSignal : Sys.SIGTRAP;
        var exitCode = signal | (Sys.PTRACE_EVENT_STOP << 8);
        EnterStop(t, new PtraceStop(signal == Sys.SIGTRAP ? StopKind.TrapStop : StopKind.GroupStop, exitCode, new SigInfo(signal, exitCode, t.Tid), 0, null), groupStopTrap: true);
    }

    /// <summary>ptrace_signal: the tracer sees the signal first; it may cancel it or deliver another (see Resume).</summary>
    private void EnterSignalDeliveryStop(FakeTask t, SigInfo info)
    {
        t.SetJobctl(JobControl.StopDequeued);
        EnterStop(t, new PtraceStop(StopKind.SignalDelivery, info.Signo, info, 0, null), groupStopTrap: false);
    }

    /// <summary>ptrace_event: a PTRACE_EVENT_* stop, if the tracer asked for it; <paramref name="after"/> runs once resumed (or at once).</summary>
    private void EnterEventStop(FakeTask t, int ptraceEvent, int option, ulong message, Action? after = null)
    {
        if (!t.Traced || (t.Options & option) == 0)
        {
            after?.Invoke();
            return;
        }

        var exitCode = Sys.SIGTRAP | (ptraceEvent << 8);
        EnterStop(t, new PtraceStop(StopKind.Event, exitCode, new SigInfo(Sys.SIGTRAP, exitCode, t.Tid), message, after), groupStopTrap: false);
    }

    /// <summary>
    /// ptrace_stop: into TASK_TRACED with a report for wait. A job-control trap (CLD_STOPPED) counts as this
    /// task's part of a group stop under way. Any trap consumes a pending STOP trap; a PTRACE_EVENT_STOP trap
    /// also consumes a pending notify.
    /// </summary>
    private void EnterStop(FakeTask t, PtraceStop stop, bool groupStopTrap)
    {
        if (!t.Traced || t.Group.IsDoomed(t))
        {
            stop.After?.Invoke();
            return;
        }

        t.State = TaskState.Traced;
        t.Stop = stop;
        t.Report = WaitStatus.Stopped(stop.ExitCode);
        if (groupStopTrap && t.Has(JobControl.StopPending))
        {
            ParticipateInGroupStop(t);
        }

        t.ClearJobctl(JobControl.TrapStop);
        if (stop.IsEventStop)
        {
            t.ClearJobctl(JobControl.TrapNotify);
        }

        Trace($"{t.Tid} stops: {stop.Kind} 0x{stop.ExitCode:x}");
    }

    /// <summary>The default action of <paramref name="signal"/> (no handlers are modelled): ignore, stop, or die.</summary>
    private void DeliverSignal(FakeTask t, int signal)
    {
        if (Abi.IsIgnoredByDefault(signal))
        {
            return;
        }

        if (Abi.IsStopSignal(signal))
        {
            // SIGTSTP, SIGTTIN and SIGTTOU would be dropped in an orphaned process group; ours never is.
            DoSignalStop(t, signal);
            return;
        }

        StartGroupExit(t.Group, WaitStatus.Killed(signal));
    }

    /// <summary>Resumed from a stop: finish the kernel path it was on, then deliver the tracer's signal, if any.</summary>
    private static void ContinueAfterStop(FakeTask t, PtraceStop? stop, int signal, Action<FakeTask, int> deliver)
    {
        var rest = stop?.After;
        var deliverSignal = stop?.Kind == StopKind.SignalDelivery && signal != 0;
        t.StopSignalToDeliver = deliverSignal && Abi.IsStopSignal(signal) ? signal : 0;
        if (rest is null && !deliverSignal)
        {
            return;
        }

        t.Continuation = () =>
        {
            t.StopSignalToDeliver = 0;
            rest?.Invoke();
            if (deliverSignal)
            {
                deliver(t, signal);
            }
        };
    }
}
