using ProcHex.Ports;
using static Interop;

namespace ProcHex.Backends.FreeBSD;

/// <summary>
/// The stops of <see cref="FreeBsdProcess"/>: waiting for the next one, stop requests, resuming, and S20's watch over a parked victim.
/// </summary>
internal sealed partial class FreeBsdProcess
{
    public async ValueTask<StopEvent> WaitForStopAsync(CancellationToken cancellationToken)
    {
        RequireControl();
        while (true)
        {
            WaitResult result;
            Task<WaitResult>? task = null;
            Task wake;
            lock (_gate)
            {
                if (_mailbox.TryTake(out var posted))
                {
                    return posted;
                }

                if (_stashed is { } stashed)
                {
                    _stashed = null;
                    result = stashed;
                }
                else if (_awaitingExternalResume && _stopped)
                {
                    result = default;
                }
                else
                {
                    result = default;
                    task = _waiter!.NextAsync(0);
                }

                wake = _mailbox.NextArrival();
            }

            if (task is null && result == default)
            {
                // S20: nothing will be reported while we hold the victim in its trace stop; look at what is pending.
                if (await WaitParkedAsync(wake, cancellationToken) is { } parked)
                {
                    return parked;
                }

                continue;
            }

            if (task is not null)
            {
                // A stopped victim has nothing to report until someone else resumes it; RequestStop wakes us instead
                // (the waitpid stays pending and its status goes to the next wait).
                await Task.WhenAny(task, wake).WaitAsync(cancellationToken);
                if (!task.IsCompleted)
                {
                    continue;
                }

                result = await task;
                _waiter!.Consume(task);
            }

            StopEvent? stop;
            lock (_gate)
            {
                stop = Interpret(result);
            }

            if (stop is { } s)
            {
                return s;
            }
        }
    }

    /// <summary>What <see cref="WaitForStopAsync"/> would return at once: the same sources, without blocking.</summary>
    public StopEvent? TakeReadyStop()
    {
        RequireControl();
        lock (_gate)
        {
            if (_mailbox.TryTake(out var posted))
            {
                return posted;
            }

            while (true)
            {
                WaitResult result;
                if (_stashed is { } stashed)
                {
                    _stashed = null;
                    result = stashed;
                }
                else if (_awaitingExternalResume && _stopped)
                {
                    return CheckParked();
                }
                else if (!_waiter!.TryNext(0, out result))
                {
                    return null;
                }

                if (Interpret(result) is { } stop)
                {
                    return stop;
                }
            }
        }
    }

    public void Resume()
    {
        RequireControl();
        lock (_gate)
        {
            if (_gone || !_stopped)
            {
                return;
            }

            _awaitingExternalResume = false;
            if (_stepOver is var (lwp, patch))
            {
                _stepOver = null;
                if (!StepOverNow(lwp, patch))
                {
                    return;
                }
            }

            var signal = _pendingSignal;
            _pendingSignal = 0;
            ContinueLocked(signal);
        }
    }

    public void AwaitExternalResume()
    {
        RequireControl();
        lock (_gate)
        {
            // Stay in the trace stop (a traced process cannot sit in a job-control stop, see the class remarks)
            // and watch the pending set for somebody's SIGCONT.
            _awaitingExternalResume = true;
            _pendingSignal = 0;
        }
    }

    /// <summary>
    /// S20 while we hold the victim: sleep with a growing interval (never spinning), waking early for RequestStop or
    /// cancellation, until ki_siglist shows a SIGCONT (reported as ResumedByOthers) or a SIGKILL (which would wait for
    /// our resume forever: the victim is continued so it dies and the next wait reports the death).
    /// </summary>
    private async Task<StopEvent?> WaitParkedAsync(Task wake, CancellationToken cancellationToken)
    {
        var delay = ParkedPollMin;
        while (true)
        {
            lock (_gate)
            {
                if (_mailbox.Count > 0 || !_awaitingExternalResume || !_stopped)
                {
                    return null;
                }

                if (CheckParked() is { } stop)
                {
                    return stop;
                }

                if (!_stopped)
                {
                    return null;
                }
            }

            await Task.WhenAny(wake, Task.Delay(delay, cancellationToken)).WaitAsync(cancellationToken);
            if (wake.IsCompleted)
            {
                return null;
            }

            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, ParkedPollMax.Ticks));
        }
    }

    /// <summary>One look at the pending set of a parked victim (under the gate).</summary>
    private StopEvent? CheckParked()
    {
        var pending = PendingSignals();
        if (pending.Contains(Signals.SIGKILL))
        {
            // tdsendsignal left the SIGKILL queued because the victim is trace-stopped; let it act.
            _awaitingExternalResume = false;
            ContinueLocked(0);
            return null;
        }

        if (pending.Contains(Signals.SIGCONT))
        {
            _awaitingExternalResume = false;
            _queuedContinue = true;
            return StopEvent.Stopped(StopReason.ResumedByOthers, _lastLwp);
        }

        return null;
    }

    /// <summary>ki_siglist of KERN_PROC_PID: the signals pending for the whole process (kern_proc.c fill_kinfo_proc_only).</summary>
    private HashSet<int> PendingSignals()
    {
        var set = new HashSet<int>();
        if (ProcessIdentity.Kinfo(_kernel, Pid) is not { } kinfo || kinfo.Length < KinfoProc.SiglistOffset + 16)
        {
            return set;
        }

        for (var word = 0; word < 4; word++)
        {
            var bits = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(kinfo.AsSpan(KinfoProc.SiglistOffset + (4 * word)));
            for (var bit = 0; bit < 32; bit++)
            {
                if ((bits & (1u << bit)) != 0)
                {
                    set.Add((32 * word) + bit + 1);
                }
            }
        }

        return set;
    }

    public void RequestStop()
    {
        if (Access != GrabAccess.Control)
        {
            return;
        }

        lock (_gate)
        {
            if (_gone || _released)
            {
                return;
            }

            if (_stopped)
            {
                // One at a time, as a flag would be: a second request before the wait takes the first adds nothing.
                if (!_mailbox.Holds(StopReason.Interrupted))
                {
                    _ = _mailbox.Post(StopEvent.Stopped(StopReason.Interrupted, _lastLwp), _lastLwp);
                }

                return;
            }

            _stopRequested = true;
            if (!_ourStopInFlight)
            {
                // One outstanding SIGSTOP at most: a second would coalesce with the first into one stop.
                _ourStopInFlight = _kernel.Kill(Pid, Signals.SIGSTOP, out _) == 0;
            }
        }
    }

    /// <summary>
    /// After a transparent attach the first PT_CONTINUE/PT_DETACH drops its signal; queue it with kill(2) instead, so it
    /// is taken (as a signal stop again while traced, or its default action once detached).
    /// </summary>
    private int SignalForResume(int signal)
    {
        if (_firstResumeDropsSignal)
        {
            _firstResumeDropsSignal = false;
            if (signal != 0)
            {
                _ = _kernel.Kill(Pid, signal, out _);
                return 0;
            }
        }

        return signal;
    }

    private void ContinueLocked(int signal)
    {
        signal = SignalForResume(signal);
        _ptrace.Check(PtraceRequest.PT_CONTINUE, Pid, PtraceRequest.ResumeHere, signal, "PT_CONTINUE");
        _stopped = false;
    }
}
