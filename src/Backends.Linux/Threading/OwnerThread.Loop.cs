namespace ProcHex.Backends.Linux;

/// <summary>The owner's loop: run queued and deferred work, linger, block in one waitpid for every tracee, keep the wake process alive.</summary>
internal sealed partial class OwnerThread
{
    private void Wake()
    {
        // One signal per drain is enough: the owner clears the flag before it looks at the queue.
        if (Interlocked.CompareExchange(ref _wakeSignalled, 1, 0) == 0)
        {
            _kernel.Wake(Volatile.Read(ref _wakePid));
        }
    }

    private void Run()
    {
        try
        {
            StartWakeProcess();
        }
        catch (Exception e)
        {
            _started.SetException(e);
            return;
        }

        _started.SetResult();
        Log.OwnerStarted(_logger, _wakePid);
        _ = _kernel.SkipChildStopSignals();
        while (true)
        {
            // Raised: the owner is awake and will see new work without a signal.
            Volatile.Write(ref _wakeSignalled, 1);
            LingerForWork();

            // Lowered before the last look at the queue: work enqueued after that look comes with a signal.
            Interlocked.Exchange(ref _wakeSignalled, 0);
            if (!_work.IsEmpty)
            {
                continue;
            }

            WaitOnce();
        }
    }

    /// <summary>Runs queued work and ready statuses until there has been none for <see cref="Linger"/>.</summary>
    private void LingerForWork()
    {
        var quietSince = System.Diagnostics.Stopwatch.GetTimestamp();
        var spins = 0;
        while (true)
        {
            // waitpid(-1) costs the kernel one look at every tracee (wait_consider_task): with 1,000 victims,
            // polling it in this loop kept the owner busy scanning (bench/ProcHex.Scale). With many tracees the
            // linger watches the queue only, and statuses wait for the blocking wait, at most Linger later.
            var busy = RunReadyWork(poll: _byTid.Count <= PollingTraceeLimit);
            var now = System.Diagnostics.Stopwatch.GetTimestamp();
            if (busy)
            {
                quietSince = now;
                spins = 0;
            }
            else if (now - quietSince > Linger)
            {
                return;
            }
            else
            {
                // Yields to the victim or the core now and then: on a small machine they need this core.
                Thread.SpinWait(++spins % 8 == 0 ? 1 : 20);
                if (spins % 8 == 0)
                {
                    _ = Thread.Yield();
                }
            }
        }
    }

    /// <summary>
    /// One round of the owner loop's body: queued work, early statuses, one non-blocking wait (when
    /// <paramref name="poll"/>), deferred completions. True when any of them had something to do.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private bool RunReadyWork(bool poll)
    {
        var busy = false;
        while (_work.TryDequeue(out var item))
        {
            item();
            busy = true;
        }

        busy |= DispatchEarly();
        busy |= poll && PollOnce();
        busy |= RunDeferred();
        return busy;
    }

    /// <summary>
    /// The manual owner's loop (see <see cref="Manual"/>): runs the owner loop's body until a round finds nothing
    /// to do (no work, no early status, nothing waitpid(WNOHANG) reports, no deferred completion), never blocking.
    /// Returns whether anything was done. The owner's thread only.
    /// </summary>
    internal bool PumpUntilIdle()
    {
        if (_thread is not null || !IsCurrent)
        {
            throw new InvalidOperationException("only a manual owner is pumped, and only by its own thread");
        }

        var any = false;
        while (RunReadyWork(poll: true))
        {
            any = true;
        }

        return any;
    }

    /// <summary>
    /// Queues <paramref name="completion"/> to run on the owner once the work at hand is done (it runs a control
    /// loop's continuation: that must not happen in the middle of handling a status or of a sub-wait). Owner only.
    /// </summary>
    public void Defer(IDeferredCompletion completion)
    {
        AssertCurrent();
        _deferred.Enqueue(completion);
    }

    /// <summary>Runs the deferred completions, those they defer in turn included; true when there were any.</summary>
    private bool RunDeferred()
    {
        AssertCurrent();
        if (_deferred.Count == 0)
        {
            return false;
        }

        while (_deferred.TryDequeue(out var completion))
        {
            try
            {
                completion.Complete();
            }
            catch (Exception e)
            {
                Log.DeferredFailed(_logger, e);
            }
        }

        return true;
    }

    /// <summary>One non-blocking wait; true when it had a status to dispatch.</summary>
    private bool PollOnce()
    {
        var (tid, status, _) = _kernel.WaitPid(-1, Interop.Sys.__WALL | Interop.Sys.__WNOTHREAD | Interop.Sys.WNOHANG);
        if (tid <= 0)
        {
            return false;
        }

        Interlocked.Increment(ref _waitReturns);
        Dispatch(tid, new WaitStatus(status));
        return true;
    }

    private void WaitOnce()
    {
        var (tid, status, errno) = _kernel.WaitPid(-1, Interop.Sys.__WALL | Interop.Sys.__WNOTHREAD);
        Interlocked.Increment(ref _waitReturns);

        // The runtime installs its SIGCHLD handler only when the host first starts a process, at any time: look
        // again whenever the owner wakes from an idle wait.
        if (_kernel.SkipChildStopSignals())
        {
            Log.ChildStopSignalsSkipped(_logger);
        }

        if (tid <= 0)
        {
            // EINTR; ECHILD cannot happen while the wake process lives, but never spin if it does.
            if (errno == Interop.Errno.ECHILD)
            {
                StartWakeProcess();
            }

            return;
        }

        Dispatch(tid, new WaitStatus(status));
    }


    private void StartWakeProcess() => Volatile.Write(ref _wakePid, _kernel.StartWakeProcess());
}
