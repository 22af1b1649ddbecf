using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace ProcHex.Backends.Linux;

/// <summary>
/// The one thread that is the tracer, in the kernel's sense, of every victim of a <see cref="LinuxTracer"/>.
/// </summary>
/// <remarks>
/// <para><b>Who owns what.</b> Linux binds a tracee to the thread that attached it, and detaches (or, with
/// EXITKILL, kills) it when that thread exits. So a single dedicated, background, never-pooled thread spawns,
/// seizes, ptraces and waits for every victim, and lives as long as the process. Everything a ptrace call or a
/// wait touches is owned by it and needs no lock: the tid-to-victim map, the orphan stops, each victim's thread
/// table and planted-breakpoint map. Other threads reach it only through <see cref="Invoke{T}"/> (blocking,
/// for the short synchronous port calls) or <see cref="InvokeAsync{T}"/> (create, grab); a call made on the
/// owner itself runs inline, which is what lets the core call back into the port from continuations the owner
/// runs. The only state shared with other threads is the work queue (lock-free) and each victim's event queue
/// (guarded by that victim's own small event lock, never held across a ptrace call). Memory reads use
/// process_vm_readv and may run on any thread.</para>
/// <para><b>How it waits.</b> The owner blocks in <c>waitpid(-1, __WALL | __WNOTHREAD)</c>: one call covers
/// every victim (1,000 victims cost nothing extra) and, thanks to __WNOTHREAD, never touches the children the
/// host application starts with Process.Start (the runtime fails fast if anyone reaps those). To wake it for
/// new work, the owner keeps one extra tracee of its own, the <i>wake process</i> (<c>sleep infinity</c>, seized
/// with EXITKILL so it dies with us): any thread sends it SIGUSR1, the kernel turns that into a
/// signal-delivery-stop, the wait returns, the owner swallows the signal and drains the queue. Nothing polls.
/// The alternatives were rejected: a pidfd only becomes readable when a process exits, never at a ptrace stop,
/// so poll() over pidfds cannot see breakpoints; signalfd and EINTR tricks need control of SIGCHLD or of
/// signal dispositions, which belong to the .NET runtime. The wake process also guarantees the wait never
/// fails with ECHILD when no victim is held.</para>
/// <para><b>Synchronous sub-waits.</b> A few operations (stop all threads, step over a breakpoint, collect a new
/// thread's or child's first stop, kill and reap) wait for one specific tid with <c>waitpid(tid, __WALL)</c>
/// on the owner. Statuses of other tracees stay queued in the kernel meanwhile; a status of a tid nobody knows
/// yet (a new thread whose parent's clone event is still unread) is kept as an orphan and claimed later.</para>
/// </remarks>
internal sealed class OwnerThread
{
    private static readonly object SharedLock = new();
    private static OwnerThread? _shared;

    private readonly ConcurrentQueue<Action> _work = new();
    private readonly Dictionary<int, ITraceeStatusSink> _byTid = [];
    private readonly Dictionary<int, int> _orphans = [];
    private readonly Thread _thread;
    private readonly ILogger _logger;
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _wakePid;
    private int _wakeSignalled;
    private long _waitReturns;

    public OwnerThread(ILogger? logger)
    {
        _logger = logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        _thread = new Thread(Run) { IsBackground = true, Name = "ProcHex ptrace owner" };
        _thread.Start();
        _started.Task.GetAwaiter().GetResult();
    }

    /// <summary>The process-wide owner: victims of every tracer in this process share it.</summary>
    public static OwnerThread Shared => GetShared(null);

    /// <summary>The process-wide owner; the first caller's logger is the one it logs to.</summary>
    public static OwnerThread GetShared(ILogger? logger)
    {
        lock (SharedLock)
        {
            return _shared ??= new OwnerThread(logger);
        }
    }

    public bool IsCurrent => Environment.CurrentManagedThreadId == _thread.ManagedThreadId;

    public ILogger Logger => _logger;

    /// <summary>How many times a wait of the owner has returned: a victim that is waited for without polling adds none.</summary>
    public long WaitReturns => Interlocked.Read(ref _waitReturns);

    /// <summary>Runs <paramref name="work"/> on the owner and returns its result; inline when already there.</summary>
    public T Invoke<T>(Func<T> work)
    {
        if (IsCurrent)
        {
            return work();
        }

        return InvokeAsync(work).GetAwaiter().GetResult();
    }

    public void Invoke(Action work) => Invoke(() =>
    {
        work();
        return true;
    });

    public Task<T> InvokeAsync<T>(Func<T> work)
    {
        if (IsCurrent)
        {
            try
            {
                return Task.FromResult(work());
            }
            catch (Exception e)
            {
                return Task.FromException<T>(e);
            }
        }

        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        _work.Enqueue(() =>
        {
            try
            {
                done.SetResult(work());
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        });
        Wake();
        return done.Task;
    }

    /// <summary>Routes the statuses of <paramref name="tid"/> to <paramref name="sink"/>. Owner only.</summary>
    public void Register(int tid, ITraceeStatusSink sink) => _byTid[tid] = sink;

    public void Unregister(int tid) => _byTid.Remove(tid);

    /// <summary>
    /// Waits for the next status of one tracee (owner only): an orphan kept earlier, or a fresh blocking wait.
    /// Null when the tid is no longer ours to wait for (ECHILD).
    /// </summary>
    public unsafe WaitStatus? WaitFor(int tid)
    {
        if (_orphans.Remove(tid, out var kept))
        {
            return new WaitStatus(kept);
        }

        Log.Step(_logger, tid, "owner blocks for this tid alone");
        while (true)
        {
            int status;
            var r = Interop.Sys.WaitPid(tid, &status, Interop.Sys.__WALL);
            Interlocked.Increment(ref _waitReturns);
            if (r == tid)
            {
                return new WaitStatus(status);
            }

            if (r == -1 && Interop.Sys.LastErrno == Interop.Errno.EINTR)
            {
                continue;
            }

            return null;
        }
    }

    private void Wake()
    {
        // One signal per drain is enough: the owner clears the flag before it looks at the queue.
        if (Interlocked.CompareExchange(ref _wakeSignalled, 1, 0) == 0)
        {
            _ = Interop.Sys.Kill(Volatile.Read(ref _wakePid), Interop.Sys.SIGUSR1);
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
        while (true)
        {
            Volatile.Write(ref _wakeSignalled, 0);
            while (_work.TryDequeue(out var item))
            {
                item();
            }

            if (!_work.IsEmpty)
            {
                continue;
            }

            WaitOnce();
        }
    }

    private unsafe void WaitOnce()
    {
        int status;
        var tid = Interop.Sys.WaitPid(-1, &status, Interop.Sys.__WALL | Interop.Sys.__WNOTHREAD);
        Interlocked.Increment(ref _waitReturns);
        if (tid <= 0)
        {
            // EINTR; ECHILD cannot happen while the wake process lives, but never spin if it does.
            if (Interop.Sys.LastErrno == Interop.Errno.ECHILD)
            {
                StartWakeProcess();
            }

            return;
        }

        Dispatch(tid, new WaitStatus(status));
    }

    /// <summary>Hands one status to whoever owns the tid. Owner only.</summary>
    public void Dispatch(int tid, WaitStatus status)
    {
        if (tid == _wakePid)
        {
            if (status.Ended)
            {
                Log.WakeRespawn(_logger, status.ToString());
                StartWakeProcess();
            }
            else
            {
                _ = Interop.Sys.TryPtrace(Interop.Sys.PTRACE_CONT, tid, 0, 0);
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

    private void StartWakeProcess()
    {
        var sleep = File.Exists("/bin/sleep") ? "/bin/sleep" : "/usr/bin/sleep";
        var pid = Spawner.Spawn(sleep, [sleep, "infinity"], []);
        if (Interop.Sys.TryPtrace(Interop.Sys.PTRACE_SEIZE, pid, 0, Interop.Sys.PTRACE_O_EXITKILL) is var err and not 0)
        {
            _ = Interop.Sys.Kill(pid, Interop.Sys.SIGKILL);
            throw Interop.Sys.Failure("cannot trace the owner thread's wake process (is ptrace permitted?)", err);
        }

        Volatile.Write(ref _wakePid, pid);
    }
}

/// <summary>Receives the wait statuses of the tids registered for it, on the owner thread.</summary>
internal interface ITraceeStatusSink
{
    void OnStatus(int tid, WaitStatus status);
}
