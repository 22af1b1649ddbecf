using ProcHex.Ports;
using static Interop;

namespace ProcHex.Backends.FreeBSD;

/// <summary>What a wait status and its PT_LWPINFO mean for the core.</summary>
internal sealed partial class FreeBsdProcess
{
    private StopEvent? Interpret(WaitResult result)
    {
        if (result.Result == -1)
        {
            _gone = true;
            _stopped = false;
            return StopEvent.Lost(Pid, $"pid {Pid} can no longer be waited for: {Errno.Describe(result.Errno)}");
        }

        var status = result.Status;
        if (Wait.IfContinued(status))
        {
            // Someone sent SIGCONT while we kept the victim in its trace stop: it is still stopped, for us.
            _awaitingExternalResume = false;
            return StopEvent.Stopped(StopReason.ResumedByOthers, _lastLwp);
        }

        if (Wait.IfExited(status))
        {
            _gone = true;
            _stopped = false;
            return StopEvent.Exited(Pid, ExitStatus.FromCode(Wait.ExitStatus(status)));
        }

        if (Wait.IfSignaled(status))
        {
            _gone = true;
            _stopped = false;
            return StopEvent.Exited(Pid, ExitStatus.FromSignal(Wait.TermSignal(status), Wait.CoreDumped(status)));
        }

        if (!Wait.IfStopped(status))
        {
            return null;
        }

        _stopped = true;
        _pendingSignal = 0;
        var signal = Wait.StopSignal(status);
        Interop.PtraceLwpInfo info;
        try
        {
            info = _ptrace.LwpInfo(Pid);
        }
        catch (TracerException e) when (e.IsGone)
        {
            _gone = true;
            return StopEvent.Lost(Pid, e.Message);
        }

        _lastLwp = info.pl_lwpid;
        var stop = Classify(signal, info);
        if (stop is not null)
        {
            _stopRequested = false;
        }

        return stop;
    }

    private StopEvent? Classify(int signal, Interop.PtraceLwpInfo info)
    {
        var lwp = info.pl_lwpid;
        var flags = info.Flags;
        if ((flags & LwpFlags.PL_FLAG_EXEC) != 0)
        {
            // A new image: the old text and its breakpoints are gone; never write to the new text here.
            _traps.Clear();
            _stepOverPlanner.ForgetImage();
            _stepOver = null;
            _vforkShared = false;
            return StopEvent.Stopped(StopReason.ExecDone, lwp, Pc(lwp));
        }

        if ((flags & LwpFlags.PL_FLAG_FORKED) != 0)
        {
            var vfork = (flags & LwpFlags.PL_FLAG_VFORKED) != 0;
            _ = _forkChildren.Clean(info.pl_child_pid);
            if (vfork)
            {
                // Cleaning the vfork child cleaned our text too (shared memory) until PL_FLAG_VFORK_DONE.
                _vforkShared = true;
                return StopEvent.Stopped(StopReason.ForkStarting, lwp, Pc(lwp));
            }

            return StopEvent.Stopped(StopReason.ForkDone, lwp, Pc(lwp));
        }

        if ((flags & LwpFlags.PL_FLAG_VFORK_DONE) != 0)
        {
            _vforkShared = false;
            foreach (var address in _traps.Addresses)
            {
                WriteTrap(address);
            }

            return StopEvent.Stopped(StopReason.VforkDone, lwp, Pc(lwp));
        }

        if ((flags & (LwpFlags.PL_FLAG_BORN | LwpFlags.PL_FLAG_EXITED)) != 0)
        {
            // Every LWP shares the text and is stopped with the process; nothing to do but go on.
            return Swallow((flags & LwpFlags.PL_FLAG_BORN) != 0 ? "lwp born" : "lwp exited");
        }

        var si = info.pl_siginfo;
        var hasSi = (flags & LwpFlags.PL_FLAG_SI) != 0;
        if (signal == Signals.SIGTRAP)
        {
            if (IsBreakpointTrap(info))
            {
                return RewindIfOurs(lwp) is { } address
                    ? StopEvent.Stopped(StopReason.Breakpoint, lwp, address)
                    : Deliver(Signals.SIGTRAP, lwp);
            }

            if (hasSi && si.si_code == SiCode.TRAP_TRACE)
            {
                return StopEvent.Stopped(StopReason.SingleStep, lwp, Pc(lwp));
            }

            if (!hasSi)
            {
                // An event stop we did not ask for (a bare syscall-exit report): nothing for the core.
                return Swallow("event stop without siginfo");
            }

            return Deliver(Signals.SIGTRAP, lwp);
        }

        if (signal == Signals.SIGCONT && _queuedContinue && !_ourStopInFlight)
        {
            // The outside SIGCONT of S20, queued while we held the victim: deliver it (a handler may want it).
            _queuedContinue = false;
            _pendingSignal = Signals.SIGCONT;
            ContinueLocked(Signals.SIGCONT);
            return null;
        }

        if (IsOurStop(signal, info))
        {
            _ourStopInFlight = false;
            _queuedContinue = false;
            var deliver = signal == Signals.SIGCONT ? Signals.SIGCONT : 0;
            if (_stopRequested)
            {
                _pendingSignal = deliver;
                return StopEvent.Stopped(StopReason.Interrupted, lwp, Pc(lwp));
            }

            Log.Swallowed(_logger, Pid, "our SIGSTOP after another stop won the race");
            ContinueLocked(deliver);
            return null;
        }

        if (Signals.IsStopSignal(signal))
        {
            return StopEvent.Stopped(StopReason.StoppedByOthers, lwp, Pc(lwp));
        }

        return Deliver(signal, lwp);
    }

    private StopEvent Deliver(int signal, int lwp)
    {
        _pendingSignal = signal;
        return StopEvent.Stopped(StopReason.Signal, lwp, Pc(lwp));
    }

    private StopEvent? Swallow(string what)
    {
        Log.Swallowed(_logger, Pid, what);
        ContinueLocked(0);
        return null;
    }

    /// <summary>
    /// Our outstanding SIGSTOP, or the SIGCONT that deleted it before it was taken (see the class remarks). A SIGSTOP
    /// carries no sender, so an outsider's SIGSTOP that coalesced with ours is indistinguishable from it.
    /// </summary>
    private bool IsOurStop(int signal, Interop.PtraceLwpInfo info) =>
        _ourStopInFlight
        && (signal == Signals.SIGSTOP
            || (signal == Signals.SIGCONT && (info.Flags & LwpFlags.PL_FLAG_SI) != 0 && info.pl_siginfo.si_pid != _tracerPid));

    private static bool IsBreakpointTrap(Interop.PtraceLwpInfo info) =>
        (info.Flags & LwpFlags.PL_FLAG_SI) != 0 && info.pl_siginfo.si_code == SiCode.TRAP_BRKPT;
}
