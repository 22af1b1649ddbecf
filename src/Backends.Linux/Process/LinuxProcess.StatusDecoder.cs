using ProcHex.Ports;
using Microsoft.Extensions.Logging;
using static ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux;

/// <summary>
/// What a wait status of one of the victim's threads means, and what <see cref="StopByOthers"/> decided about it. Owner only.
/// </summary>
internal sealed partial class LinuxProcess
{
    private void HandleStatus(int tid, WaitStatus status)
    {
        _owner.AssertCurrent();
        if (!_threads.TryGetValue(tid, out var thread))
        {
            return;
        }

        if (_logger.IsEnabled(LogLevel.Trace))
        {
            Log.ThreadStatus(_logger, Pid, tid, status.ToString());
        }

        // A report means the thread ran, died, or (an exec by another thread) is someone else under this tid: what was
        // known of its registers is not its registers now.
        thread.RegistersKnown = false;
        if (status.Ended)
        {
            ThreadEnded(thread, status);
            return;
        }

        thread.Running = false;
        var signal = status.StopSignal;
        switch (status.Event)
        {
            case PTRACE_EVENT_STOP:
                Apply(signal == SIGTRAP ? _stops.TrapStopReported(tid) : _stops.GroupStopReported(tid));

                break;
            case PTRACE_EVENT_CLONE:
                AdoptThread((int)GetEventMessage(tid));
                ResumeIfFree(thread);
                break;
            case PTRACE_EVENT_FORK:
                _ = _forkChildren.Clean((int)GetEventMessage(tid));
                Deliver(StopEvent.Stopped(StopReason.ForkDone, tid, 0), thread);
                break;
            case PTRACE_EVENT_VFORK:
                CollectVforkChild((int)GetEventMessage(tid));
                Deliver(StopEvent.Stopped(StopReason.ForkStarting, tid, 0), thread);
                break;
            case PTRACE_EVENT_VFORK_DONE:
                Deliver(StopEvent.Stopped(StopReason.VforkDone, tid, 0), thread);
                break;
            case PTRACE_EVENT_EXEC:
                OnExec();
                break;
            case 0 when signal == SIGTRAP:
                OnTrap(thread);
                break;
            case 0 when signal == (SIGTRAP | 0x80):
                // A syscall stop we did not ask for (left from the launch): nothing to report.
                ResumeIfFree(thread);
                break;
            default:
                // A signal about to be delivered: deliver it. Stop signals come back as a group-stop.
                thread.InjectSignal = signal;
                ResumeIfFree(thread);
                break;
        }
    }

    /// <summary>
    /// Carries out what <see cref="StopByOthers"/> decided. The machine's own list is read as it stands: nothing done
    /// here raises another event in it (a listen's outcome only updates a member). Owner only.
    /// </summary>
    private void Apply(IReadOnlyList<StopAction> actions)
    {
        _owner.AssertCurrent();
        for (var i = 0; i < actions.Count; i++)
        {
            var action = actions[i];
            switch (action.Kind)
            {
                case StopActionKind.Park:
                    Park(action.Tid);
                    break;
                case StopActionKind.Resume when _threads.TryGetValue(action.Tid, out var thread):
                    ResumeIfFree(thread);
                    break;
                case StopActionKind.RestoreOptions when action.Tid == 0:
                    foreach (var tid in _threads.Keys)
                    {
                        _ = TryPtrace(PTRACE_SETOPTIONS, tid, 0, Options);
                    }

                    break;
                case StopActionKind.RestoreOptions:
                    _ = TryPtrace(PTRACE_SETOPTIONS, action.Tid, 0, Options);
                    break;
                case StopActionKind.DropExitKill:
                    _ = TryPtrace(PTRACE_SETOPTIONS, action.Tid, 0, BaseOptions);
                    break;
                case StopActionKind.ReportStopped:
                    Deliver(StopEvent.Stopped(StopReason.StoppedByOthers, Pid, 0), null);
                    break;
                case StopActionKind.ReportResumed:
                    Deliver(StopEvent.Stopped(StopReason.ResumedByOthers, Pid, 0), null);
                    break;
            }
        }
    }

    /// <summary>
    /// PTRACE_LISTEN keeps a thread stopped while someone else's stop lasts and wakes it, reporting SIGTRAP, once it
    /// is over: a SIGCONT that comes before every thread has reported the group-stop would otherwise leave the ones
    /// that did in a plain trap-stop for good (chaos seed 11). Options first (a listening thread takes no requests):
    /// while the stop lasts, a crash of the tracer must leave even a created victim stopped (S20), so no EXITKILL;
    /// it comes back with the resume. Owner only.
    /// </summary>
    private void Park(int tid)
    {
        _owner.AssertCurrent();
        Log.Step(_logger, Pid, $"listen {tid}");
        _ = TryPtrace(PTRACE_SETOPTIONS, tid, 0, BaseOptions);
        _stops.ListenReturned(tid, TryPtrace(PTRACE_LISTEN, tid, 0, 0) == 0);
    }

    /// <summary>
    /// A thread other than the leader that calls execve takes over the leader's tid once the kernel has killed the old
    /// leader, even one we hold in a ptrace stop (de_thread, exchange_tids), and stops in PTRACE_EVENT_EXEC: from then
    /// on the tid we believe stopped at the old leader's stop names the new one, whose exec report is pending. A
    /// PTRACE_CONT, SETREGS or SINGLESTEP acting on the old stop would act on the exec stop instead, and resuming drops
    /// its uncollected report (ptrace_resume): the exec would go unseen, the breakpoints of the old image would stay
    /// planted in our books and the memory file bound to the dead mm (linux simulation seeds 1806 and 9802). So the
    /// leader's pending status is handled before the leader is acted on: one it is already kept (read by a sub-wait
    /// for another tid) costs nothing; the kernel is asked (one WNOHANG waitpid) only while another thread exists that
    /// could be exec'ing. Owner only.
    /// </summary>
    private void TakeLeaderStatus()
    {
        _owner.AssertCurrent();
        if (_threads.TryGetValue(Pid, out var leader) && !leader.Running)
        {
            _ = _owner.PollFor(Pid, askKernel: _threads.Count > 1);
        }
    }
}
