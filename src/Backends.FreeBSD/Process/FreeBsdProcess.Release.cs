using ProcHex.Ports;
using static Interop;

namespace ProcHex.Backends.FreeBSD;

/// <summary>
/// Letting go of <see cref="FreeBsdProcess"/> (S9): run, hang or kill, with every trap taken out first.
/// </summary>
internal sealed partial class FreeBsdProcess
{
    public void Release(ReleaseMode mode)
    {
        lock (_gate)
        {
            if (_released)
            {
                return;
            }

            _released = true;
            if (Access != GrabAccess.Control)
            {
                return;
            }

            try
            {
                ReleaseLocked(mode);
            }
            finally
            {
                _waiter!.Dispose();
            }
        }
    }

    public void Dispose()
    {
        // A handle dropped without Release still honours kill-on-last-close (created) or run-on-last-close (grabbed).
        Release(Created ? ReleaseMode.Kill : ReleaseMode.Run);
    }

    // The core removes its breakpoints first (S16); anything still planted goes too (ReleaseSequence), because a
    // detached victim that meets an int3 dies of SIGTRAP.
    private void ReleaseLocked(ReleaseMode mode) => ReleaseSequence.Run(mode, _traps, this, this);

    bool IReleaseHooks.Gone => _gone;

    /// <summary>PT_KILL, like PT_DETACH and PT_IO, needs a stopped victim (proc_can_ptrace).</summary>
    bool IReleaseHooks.KillsWithoutStopping => false;

    void IReleaseHooks.ForgetGone()
    {
    }

    bool IReleaseHooks.StopForRelease(ReleaseMode mode) =>
        (_stopped || StopForRelease()) && (mode == ReleaseMode.Kill || !_ourStopInFlight || DrainOurStop());

    bool IReleaseHooks.RestoreFailed(ulong address, TracerException error)
    {
        Log.ReleaseStepFailed(_logger, Pid, $"restoring 0x{address:x}", error.Message);
        return true;
    }

    void IReleaseHooks.Kill()
    {
        if (_ptrace.Raw(PtraceRequest.PT_KILL, Pid, 0, 0, out _) == -1)
        {
            _ = _kernel.Kill(Pid, Signals.SIGKILL, out _);
        }

        ReapAfterKill();
    }

    void IReleaseHooks.Detach(ReleaseMode mode)
    {
        if (mode == ReleaseMode.Run)
        {
            Detach(_pendingSignal);
            return;
        }

        // Hang: a SIGSTOP queued now stays queued (tdsendsignal does nothing more for a trace-stopped process) and
        // PT_DETACH removes no pending signal, so the untraced process takes it: a real job-control stop until
        // someone sends SIGCONT. Passing SIGSTOP to PT_DETACH instead would be dropped after a transparent attach.
        _ = _kernel.Kill(Pid, Signals.SIGSTOP, out _);
        Detach(0);
    }

    void IReleaseHooks.Released(ReleaseMode mode)
    {
        _gone = true;
        Log.Released(_logger, Pid, mode.ToString());
    }

    private void RestorePlantedText() => _traps.RestoreAll(this, ((IReleaseHooks)this).RestoreFailed);

    private void Detach(int signal)
    {
        signal = SignalForResume(signal);
        if (_ptrace.Raw(PtraceRequest.PT_DETACH, Pid, PtraceRequest.ResumeHere, signal, out var errno) == -1)
        {
            Log.ReleaseStepFailed(_logger, Pid, "PT_DETACH", Errno.Describe(errno));
        }
    }

    /// <summary>
    /// Waits for the death. A stop on the way (a SIGKILL sent with kill(2) to a running traced victim is reported as
    /// a signal stop first, and kills only once resumed) is answered with PT_KILL, so no wait blocks on it.
    /// </summary>
    private void ReapAfterKill()
    {
        for (var i = 0; i < 64; i++)
        {
            var r = _waiter!.Next(0);
            if (r.Result == -1 || Wait.IfExited(r.Status) || Wait.IfSignaled(r.Status))
            {
                return;
            }

            if (Wait.IfStopped(r.Status))
            {
                _ = _ptrace.Raw(PtraceRequest.PT_KILL, Pid, 0, 0, out _);
            }
        }
    }

    /// <summary>
    /// PT_DETACH, PT_IO and PT_KILL need a stopped victim (proc_can_ptrace answers EBUSY otherwise). Stop it with
    /// our own SIGSTOP and let every other stop that comes first go on, as libproc's proc_detach does.
    /// Returns false when the victim died meanwhile.
    /// </summary>
    private bool StopForRelease()
    {
        _stopRequested = true;
        if (!_ourStopInFlight && _kernel.Kill(Pid, Signals.SIGSTOP, out var errno) == -1 && errno == Errno.ESRCH)
        {
            _gone = true;
            return false;
        }

        _ourStopInFlight = true;
        for (var i = 0; i < 256; i++)
        {
            var r = _waiter!.Next(0);
            if (r.Result == -1 || !Wait.IfStopped(r.Status))
            {
                _gone = true;
                return false;
            }

            _stopped = true;
            var signal = Wait.StopSignal(r.Status);
            var info = _ptrace.LwpInfo(Pid);
            _lastLwp = info.pl_lwpid;
            var flags = info.Flags;
            if (IsOurStop(signal, info))
            {
                _stopRequested = false;
                _ourStopInFlight = false;
                _pendingSignal = signal == Signals.SIGCONT ? Signals.SIGCONT : 0;
                return true;
            }

            var deliver = 0;
            if ((flags & LwpFlags.PL_FLAG_FORKED) != 0)
            {
                _ = _forkChildren.Clean(info.pl_child_pid);
            }
            else if (signal == Signals.SIGTRAP && IsBreakpointTrap(info))
            {
                _ = RewindIfOurs(info.pl_lwpid);
            }
            else if (signal != Signals.SIGTRAP && !Signals.IsStopSignal(signal))
            {
                deliver = signal;
            }

            ContinueLocked(deliver);
        }

        return false;
    }

    /// <summary>
    /// Another stop beat our SIGSTOP, which is still queued: detached now, the victim would take it and stay stopped.
    /// Run it (with the text restored) until the SIGSTOP is taken. Returns false when the victim died meanwhile.
    /// </summary>
    private bool DrainOurStop()
    {
        RestorePlantedText();
        if (_stashed is not null)
        {
            // A stop the next wait was to report is already collected: the victim is still in it.
            _stashed = null;
        }

        ContinueLocked(0);
        return StopForRelease();
    }
}
