using ProcHex.Ports;

namespace ProcHex.Backends.Linux;

/// <summary>
/// The stop mailbox of <see cref="LinuxProcess"/>: stops queued for the core, the one pending wait, and how an answer is handed over.
/// </summary>
internal sealed partial class LinuxProcess
{
    public ValueTask<StopEvent> WaitForStopAsync(CancellationToken cancellationToken)
    {
        ThrowIfReadOnly();
        ValueTask<StopEvent> wait;
        // A loop that answers on the owner never takes a queued stop here, off the owner: it would answer on this
        // thread for as long as the next stop happened to be queued before it asked, which is a matter of timing.
        // The owner hands the stop over instead, and the loop stays there from its first wait on.
        var moveToOwner = AnswerOnOwner && !_owner.IsCurrent;
        bool handOver;
        lock (_eventLock)
        {
            if (!moveToOwner && TryTakeLocked(out var ready))
            {
                return ValueTask.FromResult(ready);
            }

            if (_waiter is not null)
            {
                throw new InvalidOperationException($"pid {Pid}: a wait for a stop is already pending");
            }

            wait = _stopWaiter.Begin(moveToOwner ? _postToOwner : null);
            _waiter = _stopWaiter;
            if (cancellationToken.CanBeCanceled)
            {
                // Under the lock, so no stop completes the wait before its cancellation is in place.
                _stopWaiter.CancelOn(ForgetWaiter, cancellationToken);
            }

            handOver = moveToOwner && _mailbox.Count > 0;
        }

        if (handOver)
        {
            _owner.Post(_handOverQueuedStop);
        }

        return wait;
    }

    /// <summary>Answers a stop queued before the wait for it began, on the owner (see <see cref="WaitForStopAsync"/>).</summary>
    private void HandOverQueuedStop()
    {
        StopWaiter? waiter;
        StopEvent stop;
        lock (_eventLock)
        {
            waiter = _waiter;
            if (waiter is null || !TryTakeLocked(out stop))
            {
                return;
            }

            _waiter = null;
        }

        Answer(waiter, stop);
    }

    /// <summary>
    /// What a wait would return at once: a queued event, once the statuses the kernel already holds for our threads
    /// (and the owner has not read yet) have been handled; null otherwise. Never blocks.
    /// </summary>
    public StopEvent? TakeReadyStop()
    {
        ThrowIfReadOnly();
        return _owner.Invoke<StopEvent?>(() =>
        {
            foreach (var tid in _threads.Keys.ToArray())
            {
                _ = _owner.PollFor(tid);
            }

            lock (_eventLock)
            {
                if (_waiter is not null)
                {
                    throw new InvalidOperationException($"pid {Pid}: a wait for a stop is pending");
                }

                return TryTakeLocked(out var stop) ? stop : null;
            }
        });
    }

    /// <summary>True when the pending wait was still unclaimed by a stop and is now forgotten.</summary>
    private bool ForgetWaiter()
    {
        lock (_eventLock)
        {
            if (_waiter is null)
            {
                return false;
            }

            _waiter = null;
            return true;
        }
    }

    public void RequestStop()
    {
        if (Access == GrabAccess.ReadOnly || _dead)
        {
            return;
        }

        _owner.Invoke(() =>
        {
            if (_dead || _released)
            {
                return;
            }

            var stoppedSomething = StopAll();
            bool waiting;
            lock (_eventLock)
            {
                waiting = _waiter is not null;
            }

            if (!_dead && (stoppedSomething || waiting))
            {
                Deliver(StopEvent.Stopped(StopReason.Interrupted, Pid, 0), null);
            }
        });
    }

    private void Deliver(StopEvent stop, VictimThread? thread)
    {
        if (thread is not null)
        {
            Interlocked.Increment(ref thread.Undelivered);
        }

        StopWaiter? waiter;
        lock (_eventLock)
        {
            if (!_mailbox.Post(stop, thread))
            {
                return;
            }

            waiter = _waiter;
            if (waiter is null || !TryTakeLocked(out stop))
            {
                return;
            }

            _waiter = null;
        }

        Answer(waiter, stop);
    }

    /// <summary>Completes the control loop's wait with <paramref name="stop"/>: on the owner when answers run there.</summary>
    private void Answer(StopWaiter waiter, StopEvent stop)
    {
        if (AnswerOnOwner && _owner.IsCurrent)
        {
            // The core's answer runs on this thread, but only once the status at hand is fully handled.
            _answering = waiter;
            _answeringStop = stop;
            _owner.Defer(this);
            return;
        }

        waiter.TrySetResult(stop, inline: false);
    }

    /// <summary>
    /// Runs the core's answer to the stop <see cref="Deliver"/> handed over: its continuation, up to the next wait
    /// that has to block (handle the stop, step over, resume). Owner only, between statuses.
    /// </summary>
    void IDeferredCompletion.Complete()
    {
        var waiter = _answering!;
        _answering = null;
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        waiter.TrySetResult(_answeringStop, inline: true);
        var elapsed = System.Diagnostics.Stopwatch.GetTimestamp() - started;
        if (elapsed > SlowAnswerTicks && AnswerOnOwner)
        {
            AnswerOnOwner = false;
            Log.SlowAnswer(_logger, Pid, elapsed * 1000 / System.Diagnostics.Stopwatch.Frequency);
        }
    }

    private bool TryTakeLocked(out StopEvent stop)
    {
        if (_mailbox.TryDequeue(out stop, out var thread))
        {
            if (thread is not null)
            {
                Interlocked.Decrement(ref thread.Undelivered);
            }

            _currentTid = stop.ThreadId;
            _takenExecs = _execs;
            if (stop.Reason == StopReason.StoppedByOthers)
            {
                _stops.Acknowledge();
            }

            return true;
        }

        if (_mailbox.Final is { } final)
        {
            stop = final;
            return true;
        }

        stop = default;
        return false;
    }
}
