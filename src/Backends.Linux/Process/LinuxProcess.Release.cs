using ProcHex.Ports;
using static ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux;

/// <summary>Letting go of <see cref="LinuxProcess"/> (S9): run, hang or kill, with every trap taken out first.</summary>
internal sealed partial class LinuxProcess
{
    public void Release(ReleaseMode mode)
    {
        if (Access == GrabAccess.ReadOnly)
        {
            _released = true;
            return;
        }

        _owner.Invoke(() => ReleaseOnOwner(mode));
    }

    public void Dispose()
    {
        if (!_released && Access == GrabAccess.Control)
        {
            try
            {
                Release(_created ? ReleaseMode.Kill : ReleaseMode.Run);
            }
            catch (TracerException e)
            {
                Log.BestEffortFailed(_logger, Pid, "release on dispose", e.Message);
            }
        }

        _released = true;
        _owner.Invoke(() =>
        {
            _memory.Dispose();
            _counters.Dispose();
        });
    }

    private void ReleaseOnOwner(ReleaseMode mode)
    {
        if (_released)
        {
            return;
        }

        _released = true;
        _pendingStep = null;
        ReleaseSequence.Run(mode, _traps, this, this);
    }

    bool IReleaseHooks.Gone => _dead;

    /// <summary>SIGKILL needs no stop: the traps die with the text.</summary>
    bool IReleaseHooks.KillsWithoutStopping => true;

    void IReleaseHooks.ForgetGone() => Forget();

    bool IReleaseHooks.StopForRelease(ReleaseMode mode)
    {
        _ = StopAll();
        TakePendingTraps();
        TakeCountersOut();
        return true;
    }

    bool IReleaseHooks.RestoreFailed(ulong address, TracerException error)
    {
        if (_lost)
        {
            return false; // exec'd unseen: the traps went with the old image (OnImageGone)
        }

        Log.BestEffortFailed(_logger, Pid, $"restoring text at 0x{address:x}", error.Message);
        return true;
    }

    void IReleaseHooks.Kill() => KillAndReap();

    void IReleaseHooks.Released(ReleaseMode mode) => Log.Released(_logger, Pid, mode.ToString());

    void IReleaseHooks.Detach(ReleaseMode mode)
    {
        DetachVforkChildren();
        foreach (var thread in _threads.Values)
        {
            _ = TryPtrace(PTRACE_DETACH, thread.Tid, 0, thread.InjectSignal);
        }

        // Hang and Run detach alike, and the kernel keeps whatever stop of someone else's is in effect at that
        // moment: a thread detached while its group-stop lasts takes its part again (__ptrace_unlink sets
        // JOBCTL_STOP_PENDING), and a stop signal still pending stops the victim once it runs (S20, chaos seed 15).
        // Hang sends no SIGSTOP of its own: the core chose it from the last stop report it took, and a SIGCONT may
        // have ended that stop since (sent while the control loop was quitting, or read only by this release's
        // stop-all, its notice left unread in a trap-stop). Stopping the victim then would take back someone else's
        // continue (chaos seed 3, linux simulation seed 37519); the last word is theirs.
        var theirStopLasted = _stops.AnyMember;
        Forget();
        if (mode == ReleaseMode.Hang && theirStopLasted)
        {
            AwaitGroupStop();
        }
    }

    /// <summary>
    /// A thread that ran into one of our traps just as a stop-all interrupted it reports the interrupt first and
    /// keeps the SIGTRAP queued: detached like that, it takes the signal untraced and the victim dies of it (seen in
    /// the release race test, about once in 30 runs). Resumed while still ours, it takes the signal at once, before
    /// any instruction, as an ordinary trap stop that <see cref="OnTrap"/> answers: the PC goes back to the
    /// breakpoint and the signal is dropped. A thread in someone else's group-stop leaves it to do that, so it is
    /// detached with SIGSTOP, which puts it back into the stop. Owner only.
    /// </summary>
    /// <remarks>
    /// It is part of the release's collection, like a stop-all's: a group-stop a resumed thread reports is recorded,
    /// not parked. A thread in PTRACE_LISTEN takes no request but PTRACE_INTERRUPT and PTRACE_KILL (ptrace_check_attach
    /// fails on JOBCTL_LISTENING), so the PTRACE_DETACH that follows would fail with ESRCH and leave it traced for good
    /// (linux simulation seed 8106).
    /// </remarks>
    private void TakePendingTraps()
    {
        _collecting = true;
        try
        {
            TakePendingTrapsCollecting();
        }
        finally
        {
            _collecting = false;
        }
    }

    private void TakePendingTrapsCollecting()
    {
        foreach (var thread in _threads.Values.ToArray())
        {
            // A signal it stopped for waits for the detach: delivered now, its handler's frame would come first.
            var held = thread.InjectSignal;
            thread.InjectSignal = 0;
            var resumed = false;
            for (var attempt = 0; attempt < 4 && _threads.ContainsKey(thread.Tid) && !thread.Running && HasPendingKernelTrap(thread.Tid); attempt++)
            {
                Log.Step(_logger, Pid, $"thread {thread.Tid} has a trap pending: take it before the detach");
                resumed |= ResumeAndCollect(thread);
            }

            if (thread.InjectSignal == 0)
            {
                thread.InjectSignal = held != 0 ? held : resumed && _stops.IsMember(thread.Tid) ? SIGSTOP : 0;
            }
        }
    }

    /// <summary>Resumes a held thread and handles its next status (the victim stays held). False when it did not run.</summary>
    private bool ResumeAndCollect(VictimThread thread)
    {
        if (TryPtrace(PTRACE_CONT, thread.Tid, 0, 0) != 0)
        {
            return false;
        }

        thread.Running = true;
        _ = CollectNext(thread);
        return true;
    }

    /// <summary>
    /// After a detach the kernel wakes a thread that owes a group-stop so it can re-enter it: for a moment the
    /// victim shows as running. A Hang of a victim whose threads last reported someone else's stop waits (briefly,
    /// bounded) until it shows 'T', unless that stop turns out to be over.
    /// </summary>
    private void AwaitGroupStop()
    {
        for (var i = 0; i < 200 && Kernel.State(Pid) is { } state && state != 'T'; i++)
        {
            Kernel.Sleep(1);
        }
    }

    private void KillAndReap()
    {
        _ = Kill(Pid, SIGKILL);
        foreach (var child in _vforkChildren)
        {
            _ = Kill(child, SIGKILL);
            _ = _owner.WaitFor(child);
        }

        _vforkChildren.Clear();

        // The leader is reaped only after every other thread, and that includes a thread born just before the kill
        // whose clone event the kill swallowed: traced by us all the same, unknown to the table, listed in /proc
        // until reaped (waiting for the leader alone would block for good). No thread is born after a SIGKILL.
        foreach (var tid in _threads.Keys.Concat(Kernel.Threads(Pid)).Where(t => t != Pid).Distinct().ToArray())
        {
            Reap(tid);
        }

        Reap(Pid);

        _dead = true;
        LetGoOfOrphanedForkChildren();
        Forget();
        Deliver(StopEvent.Exited(Pid, ExitStatus.FromSignal(SIGKILL)), null);
    }

    private void Reap(int tid)
    {
        while (_owner.WaitFor(tid) is { } status && !status.Ended)
        {
        }
    }

    private void Forget()
    {
        foreach (var tid in _threads.Keys)
        {
            _owner.Unregister(tid);
        }

        _threads.Clear();
        _stops.Clear();
        _traps.Clear();
        _counters.ForgetImage();
    }
}
