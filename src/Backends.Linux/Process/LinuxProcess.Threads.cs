using ProcHex.Ports;
using Microsoft.Extensions.Logging;
using static ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux;

/// <summary>
/// The threads of <see cref="LinuxProcess"/>: resuming, stopping and collecting them, their birth and their end. Owner only.
/// </summary>
internal sealed partial class LinuxProcess
{
    public void Resume()
    {
        ThrowIfReadOnly();
        _owner.Invoke(_resumeOnOwner);
    }

    /// <summary>
    /// The step over a breakpoint asked for since the last stop comes first; a failed one is reported after the
    /// threads run again, as a failed resume would be, so a victim never stays stopped because of it. Owner only.
    /// </summary>
    private void ResumeOnOwner()
    {
        _owner.AssertCurrent();
        if (!_dead && !_released && !_lost)
        {
            TakeLeaderStatus();
        }

        // A step asked for in answer to a stop taken before an exec is the old image's: nothing is left to step.
        var step = Volatile.Read(ref _takenExecs) == _execs ? _pendingStep : null;
        _pendingStep = null;
        if (_dead || _released || _lost)
        {
            return;
        }

        TracerException? stepFailure = null;
        if (step is var (stepping, patch))
        {
            try
            {
                StepOver(stepping, patch);
            }
            catch (TracerException e)
            {
                stepFailure = e;
                if (e.ErrorNumber == Interop.Errno.ESRCH && stepping == Pid && _threads.TryGetValue(Pid, out var leader))
                {
                    // The leader was killed out of the stop being answered (see ResumeIfFree): not resumed by the
                    // loop below, since the tid may pass to a thread that execs (linux simulation seed 8739).
                    leader.Running = true;
                }
            }

            if (_dead || _released || _lost)
            {
                return;
            }
        }

        DetachVforkChildren();
        _stops.CoreResumes();

        // ResumeIfFree changes no thread table: no copy is needed (this runs on every hit).
        foreach (var thread in _threads.Values)
        {
            ResumeIfFree(thread);
        }

        if (_stops.AnyMember || _stops.AwaitsResume)
        {
            Apply(_stops.CoreResumed());
        }

        if (stepFailure is not null)
        {
            throw stepFailure;
        }
    }

    public void AwaitExternalResume()
    {
        ThrowIfReadOnly();
        _owner.Invoke(() =>
        {
            if (_dead)
            {
                return;
            }

            // Without EXITKILL a crash of the tracer detaches the victim, and a detached victim in a group-stop
            // stays stopped: exactly what S20 asks for.
            Apply(_stops.AwaitResume(_threads.Keys));
        });
    }

    private void ThreadEnded(VictimThread thread, WaitStatus status)
    {
        _threads.Remove(thread.Tid);
        _owner.Unregister(thread.Tid);
        if (thread.Tid != Pid)
        {
            // It may have been the last thread yet to join a group-stop, or to leave one.
            Apply(_stops.ThreadGone(thread.Tid));
            return;
        }

        // The leader's status comes last, once the whole group is gone.
        foreach (var t in _threads.Keys)
        {
            _owner.Unregister(t);
        }

        _threads.Clear();
        _stops.Clear();
        _dead = true;

        // A vfork child waits, stopped, for the next Resume to let it go; a parent that died first never gets one.
        // It shares the dead parent's memory: our traps come out before it runs on untraced (chaos seed 5).
        foreach (var child in _vforkChildren)
        {
            _forkChildren.RestoreText(child);
        }

        DetachVforkChildren();
        var exit = status.ToExitStatus();
        if (exit.Signaled)
        {
            LetGoOfOrphanedForkChildren();
        }

        _traps.Clear();
        _counters.ForgetImage();
        Deliver(StopEvent.Exited(Pid, exit), null);
    }

    /// <summary>A thread born from clone: collect its first stop, then let it run (unless the victim is held).</summary>
    private void AdoptThread(int tid)
    {
        if (tid <= 0 || _threads.ContainsKey(tid))
        {
            return;
        }

        var thread = AddThread(tid, running: true);
        var status = _owner.WaitFor(tid);
        if (status is not { } s)
        {
            _threads.Remove(tid);
            _owner.Unregister(tid);
            return;
        }

        // Its first stop reports SIGSTOP rather than SIGTRAP when it was born into a group-stop: OnStatus tells.
        OnStatus(tid, s);
    }

    private void ResumeIfFree(VictimThread thread)
    {
        // A status the owner already took from the kernel for it but has not dispatched yet (kept by a sub-wait for
        // another tid) is a stop nobody has handled: resuming would lose it (linux simulation seed 2564: another
        // thread's exec took the stopped leader's tid, and its exec event, then a clone event, went unread).
        // The leader's tid may also name a thread that exec'd since we saw the leader stop (TakeLeaderStatus): the
        // kernel is asked for its report while another thread could be exec'ing, and the dispatch loop hands it over
        // before anything resumes the tid.
        if (thread.Running || Volatile.Read(ref thread.Undelivered) > 0 || !_stops.MayResume(thread.Tid)
            || _owner.HasPendingStatus(thread.Tid, askKernel: thread.Tid == Pid && _threads.Count > 1))
        {
            return;
        }

        var signal = thread.InjectSignal;
        thread.InjectSignal = 0;
        _stops.Resumed(thread.Tid);
        if (_logger.IsEnabled(LogLevel.Trace))
        {
            Log.Step(_logger, Pid, $"cont {thread.Tid} sig {signal}");
        }

        var error = TryPtrace(PTRACE_CONT, thread.Tid, 0, signal);
        if (error == 0 || (error == Interop.Errno.ESRCH && thread.Tid == Pid))
        {
            // ESRCH: the leader was killed out of its stop (an exec by another thread, an exit_group): it is no longer
            // held, and its next report says what became of it; above all, the tid is not resumed again until then,
            // since a thread that execs takes it over (TakeLeaderStatus; linux simulation seed 1580).
            thread.Running = true;
        }
    }

    /// <summary>
    /// Stops every running thread and collects its stop (whatever it reports is recorded, nothing is resumed).
    /// Returns true when at least one thread had to be stopped.
    /// </summary>
    private bool StopAll()
    {
        _stops.StopAllBegins();
        var stopped = false;

        // The plain step-over stops every thread on every hit: the list is reused (taken, so a nested call would
        // get its own), and nothing else here allocates.
        var targets = _stopTargets ?? [];
        _stopTargets = null;
        _firstInterruptAt = 0;
        foreach (var thread in _threads.Values)
        {
            if (!thread.Running && !_stops.IsParked(thread.Tid))
            {
                continue;
            }

            if (_firstInterruptAt == 0)
            {
                _firstInterruptAt = System.Diagnostics.Stopwatch.GetTimestamp();
            }

            _stops.Interrupted(thread.Tid);
            thread.Running = true;

            // ESRCH: the thread is exiting; its exit status reaches the main loop.
            if (_logger.IsEnabled(LogLevel.Trace))
            {
                Log.Step(_logger, Pid, $"interrupt {thread.Tid}");
            }

            if (TryPtrace(PTRACE_INTERRUPT, thread.Tid, 0, 0) == 0)
            {
                targets.Add(thread);
            }
        }

        _collecting = true;
        try
        {
            foreach (var thread in targets)
            {
                while (_threads.ContainsKey(thread.Tid) && thread.Running && CollectNext(thread))
                {
                    stopped = true;
                }
            }
        }
        finally
        {
            _collecting = false;
            targets.Clear();
            _stopTargets = targets;
        }

        return stopped;
    }

    /// <summary>Waits for the thread's next status and handles it; false when it is no longer ours (gone). Owner only.</summary>
    private bool CollectNext(VictimThread thread)
    {
        _owner.AssertCurrent();
        if (_owner.WaitFor(thread.Tid) is not { } status)
        {
            ThreadEnded(thread, new WaitStatus(0));
            return false;
        }

        _owner.Dispatch(thread.Tid, status);
        return true;
    }
}
