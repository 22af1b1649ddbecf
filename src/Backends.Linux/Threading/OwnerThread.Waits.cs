namespace ProcHex.Backends.Linux;

/// <summary>Who owns each tid's statuses, and the owner's synchronous sub-waits for one tid (orphan and early statuses kept for later). Owner only.</summary>
internal sealed partial class OwnerThread
{
    /// <summary>Routes the statuses of <paramref name="tid"/> to <paramref name="sink"/>. Owner only.</summary>
    public void Register(int tid, ITraceeStatusSink sink)
    {
        AssertCurrent();
        _byTid[tid] = sink;
    }

    public void Unregister(int tid)
    {
        AssertCurrent();
        _byTid.Remove(tid);
    }

    /// <summary>Whether the statuses of <paramref name="tid"/> go to a victim. Owner only.</summary>
    public bool IsRegistered(int tid)
    {
        AssertCurrent();
        return _byTid.ContainsKey(tid);
    }

    /// <summary>
    /// Waits for the next status of one tracee (owner only): an orphan or early status kept before, or a fresh wait.
    /// Null when the tid is no longer ours to wait for (ECHILD).
    /// </summary>
    /// <remarks>
    /// It does not block in waitpid(tid): the kernel reports a dying group's leader only once every other thread
    /// of the group is reaped (and a multithreaded exec waits for that too), and threads we trace are reaped by us.
    /// Blocked on the leader alone we would wait for good. So while <paramref name="tid"/> has nothing to report
    /// the owner waits for any tracee and keeps what the others report as early statuses, dispatched before it
    /// waits again or claimed by a sub-wait for them.
    /// </remarks>
    public WaitStatus? WaitFor(int tid)
    {
        AssertCurrent();
        if (TakeKept(tid) is { } kept)
        {
            return kept;
        }

        Log.Step(_logger, tid, "owner waits for this tid");
        while (true)
        {
            var (r, status, errno) = _kernel.WaitPid(tid, Interop.Sys.__WALL | Interop.Sys.WNOHANG);
            if (r == 0)
            {
                (r, status, errno) = _kernel.WaitPid(-1, Interop.Sys.__WALL | Interop.Sys.__WNOTHREAD);
            }

            if (r == -1)
            {
                if (errno == Interop.Errno.EINTR)
                {
                    continue;
                }

                return null;
            }

            Interlocked.Increment(ref _waitReturns);
            if (r == tid)
            {
                return new WaitStatus(status);
            }

            _early.Add((r, status));
        }
    }

    /// <summary>
    /// Dispatches the status the kernel already holds for <paramref name="tid"/>, or one kept for it, if any, without
    /// blocking; true when there was one. Owner only, between statuses (from work it runs).
    /// </summary>
    public bool PollFor(int tid) => PollFor(tid, askKernel: true);

    /// <summary>
    /// As <see cref="PollFor(int)"/>, but asks the kernel (one WNOHANG waitpid) only when <paramref name="askKernel"/>:
    /// otherwise only a status a sub-wait already read and kept for <paramref name="tid"/> is dispatched (no syscall).
    /// </summary>
    public bool PollFor(int tid, bool askKernel)
    {
        AssertCurrent();
        if (TakeKept(tid) is { } kept)
        {
            Dispatch(tid, kept);
            return true;
        }

        if (!askKernel || ReadNow(tid) is not { } status)
        {
            return false;
        }

        Dispatch(tid, new WaitStatus(status));
        return true;
    }

    /// <summary>
    /// True when a status of <paramref name="tid"/> waits to be dispatched: one already kept (read from the kernel by a
    /// sub-wait for another tid: its thread is in a stop nobody has handled), or (when <paramref name="askKernel"/>)
    /// one the kernel holds, read now (WNOHANG) and kept for the dispatch loop. Unlike <see cref="PollFor(int, bool)"/>
    /// nothing is dispatched, so a caller in the middle of a walk over its threads may ask. Without
    /// <paramref name="askKernel"/> it costs two count comparisons when nothing is kept (every resume asks). Owner only.
    /// </summary>
    public bool HasPendingStatus(int tid, bool askKernel = false)
    {
        AssertCurrent();
        if (_orphans.Count > 0 && _orphans.ContainsKey(tid))
        {
            return true;
        }

        foreach (var (t, _) in _early)
        {
            if (t == tid)
            {
                return true;
            }
        }

        if (!askKernel || ReadNow(tid) is not { } status)
        {
            return false;
        }

        _early.Add((tid, status));
        return true;
    }

    /// <summary>The status the kernel holds for <paramref name="tid"/> now (waitpid WNOHANG), or null.</summary>
    private int? ReadNow(int tid)
    {
        var (r, status, _) = _kernel.WaitPid(tid, Interop.Sys.__WALL | Interop.Sys.WNOHANG);
        if (r != tid)
        {
            return null;
        }

        Interlocked.Increment(ref _waitReturns);
        return status;
    }

    /// <summary>The orphan stop, or else the first early status, kept for <paramref name="tid"/>: taken.</summary>
    private WaitStatus? TakeKept(int tid)
    {
        if (_orphans.Remove(tid, out var orphan))
        {
            return new WaitStatus(orphan);
        }

        for (var i = 0; i < _early.Count; i++)
        {
            if (_early[i].Tid == tid)
            {
                var status = _early[i].Status;
                _early.RemoveAt(i);
                return new WaitStatus(status);
            }
        }

        return null;
    }

    /// <summary>Dispatches the statuses sub-waits read for other tids; true when there were any. Owner only.</summary>
    private bool DispatchEarly()
    {
        AssertCurrent();
        if (_early.Count == 0)
        {
            return false;
        }

        // Dispatching may start sub-waits that keep more: take them in turn.
        while (_early.Count > 0)
        {
            var (tid, status) = _early[0];
            _early.RemoveAt(0);
            Dispatch(tid, new WaitStatus(status));
        }

        return true;
    }


    /// <summary>Hands one status to whoever owns the tid. Owner only.</summary>
    public void Dispatch(int tid, WaitStatus status)
    {
        AssertCurrent();
        if (tid == _wakePid)
        {
            if (status.Ended)
            {
                Log.WakeRespawn(_logger, status.ToString());
                StartWakeProcess();
            }
            else
            {
                _ = _kernel.Ptrace(Interop.Sys.PTRACE_CONT, tid, 0, 0);
            }

            return;
        }

        if (_byTid.TryGetValue(tid, out var sink))
        {
            try
            {
                sink.OnStatus(tid, status);
            }
            catch (Exception e)
            {
                Log.DispatchFailed(_logger, e, tid, status.ToString());
            }
        }
        else if (status.Stopped)
        {
            // A thread or child whose creator's event has not been read yet; claimed by WaitFor.
            _orphans[tid] = status.Raw;
        }
    }
}
