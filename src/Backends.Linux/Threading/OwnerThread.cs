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
/// <para><b>Through one seam.</b> Every call into the kernel (ptrace, waitpid, kill, /proc, the wake process below)
/// goes through the owner's <see cref="ILinuxKernel"/>, which the victims it holds use too: <see cref="LinuxKernel"/>
/// in production, a fake kernel in the deterministic simulation.</para>
/// <para><b>How it waits.</b> The owner blocks in <c>waitpid(-1, __WALL | __WNOTHREAD)</c>: one call covers
/// every victim (1,000 victims cost nothing extra) and, thanks to __WNOTHREAD, never touches the children the
/// host application starts with Process.Start (the runtime fails fast if anyone reaps those). To wake it for
/// new work, the owner keeps one extra tracee of its own, the <i>wake process</i> (<c>sleep infinity</c>, seized
/// with EXITKILL so it dies with us): any thread sends it SIGUSR1, the kernel turns that into a
/// signal-delivery-stop, the wait returns, the owner swallows the signal and drains the queue. Nothing polls
/// while the victims are quiet.
/// The alternatives were rejected: a pidfd only becomes readable when a process exits, never at a ptrace stop,
/// so poll() over pidfds cannot see breakpoints; signalfd and EINTR tricks need control of SIGCHLD or of
/// signal dispositions, which belong to the .NET runtime. The wake process also guarantees the wait never
/// fails with ECHILD when no victim is held.</para>
/// <para><b>Why it lingers before blocking.</b> A wake costs a whole ptrace stop of the wake process, and the
/// core answers almost every stop it is told about (step over the breakpoint, resume) within microseconds. So after
/// doing anything the owner keeps looking, for <see cref="Linger"/>, at its queue and at <c>waitpid(WNOHANG)</c>,
/// with the wake flag raised so callers do not signal; only then does it lower the flag and block. On a breakpoint
/// that is hit over and over this turns two wake-process stops per hit into none; an idle owner still sits in one
/// blocking wait.</para>
/// <para><b>The manual owner.</b> For the deterministic simulation (src/Backends.Linux.Simulation),
/// <see cref="Manual"/> makes an owner with no thread and no wake process: the thread that made it is the owner,
/// every call it makes runs inline, and the loop's body runs only when it calls <see cref="PumpUntilIdle"/>. Its
/// sub-waits block in the fake kernel's waitpid, which runs the simulated world until the report comes. The
/// production loop runs the same body (<c>RunReadyWork</c>), with the linger and the blocking wait around it.</para>
/// <para><b>Synchronous sub-waits.</b> A few operations (stop all threads, step over a breakpoint, collect a new
/// thread's or child's first stop, kill and reap) wait for one specific tid on the owner. While that tid has
/// nothing to report the owner waits for any tracee, and what the others report is kept as an <i>early status</i>,
/// dispatched before the owner waits again (or claimed by a sub-wait for that tid): blocking in
/// <c>waitpid(tid)</c> alone would deadlock on a dying group, whose leader the kernel reports only after we have
/// reaped every other traced thread. A status of a tid nobody knows yet (a new thread whose parent's clone event
/// is still unread) is kept as an orphan and claimed later.</para>
/// </remarks>
internal sealed class OwnerThread
{
    private static readonly object SharedLock = new();
    private static readonly Dictionary<ILinuxKernel, OwnerThread> SharedByKernel = [];

    private readonly ConcurrentQueue<Action> _work = new();
    private readonly Dictionary<int, ITraceeStatusSink> _byTid = [];
    private readonly Dictionary<int, int> _orphans = [];
    private readonly List<(int Tid, int Status)> _early = [];
    private readonly Queue<IDeferredCompletion> _deferred = new();
    private readonly Thread? _thread;
    private readonly int _ownerThreadId;
    private readonly ILogger _logger;
    private readonly ILinuxKernel _kernel;
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>How long the owner keeps looking for work after its last piece of work, before it blocks.</summary>
    private static readonly long Linger = System.Diagnostics.Stopwatch.Frequency / 10_000; // 100 µs

    /// <summary>Above this many traced threads the linger no longer polls waitpid(-1), whose cost grows with them.</summary>
    private const int PollingTraceeLimit = 64;
    private int _wakePid;
    private int _wakeSignalled;
    private long _waitReturns;

    public OwnerThread(ILinuxKernel kernel, ILogger? logger)
    {
        _kernel = kernel;
        _logger = logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        _thread = new Thread(Run) { IsBackground = true, Name = "ProcHex ptrace owner" };
        _ownerThreadId = _thread.ManagedThreadId;
        _thread.Start();
        _started.Task.GetAwaiter().GetResult();
    }

    /// <summary>The manual owner: no thread of its own; see <see cref="Manual"/>.</summary>
    private OwnerThread(ILinuxKernel kernel, ILogger? logger, bool manual)
    {
        _ = manual;
        _kernel = kernel;
        _logger = logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        _ownerThreadId = Environment.CurrentManagedThreadId;
        _started.SetResult();
    }

    /// <summary>
    /// An owner that starts no thread and no wake process, for the deterministic simulation: the calling thread is
    /// the owner (<see cref="IsCurrent"/>, so every <see cref="Invoke{T}"/> runs inline), and the owner loop's body
    /// runs only when that thread calls <see cref="PumpUntilIdle"/>. Its synchronous sub-waits call the kernel's
    /// blocking waitpid as usual, which a fake kernel answers by running its world until a report comes. So
    /// everything (victims, owner, core) runs on one thread, in an order the fake's seed alone decides.
    /// </summary>
    internal static OwnerThread Manual(ILinuxKernel kernel, ILogger? logger) => new(kernel, logger, manual: true);

    /// <summary>The process-wide owner: victims of every tracer in this process share it.</summary>
    public static OwnerThread Shared => GetShared(null);

    /// <summary>The process-wide owner; the first caller's logger is the one it logs to.</summary>
    public static OwnerThread GetShared(ILogger? logger) => GetShared(logger, LinuxKernel.Instance);

    /// <summary>
    /// The process-wide owner of victims seen through <paramref name="kernel"/> (one per proc root: issue 22 item 4);
    /// the first caller's logger is the one it logs to.
    /// </summary>
    public static OwnerThread GetShared(ILogger? logger, ILinuxKernel kernel)
    {
        lock (SharedLock)
        {
            if (!SharedByKernel.TryGetValue(kernel, out var owner))
            {
                SharedByKernel[kernel] = owner = new OwnerThread(kernel, logger);
            }

            return owner;
        }
    }

    public bool IsCurrent => Environment.CurrentManagedThreadId == _ownerThreadId;

    public ILogger Logger => _logger;

    /// <summary>The kernel this owner traces through: every victim it holds makes its calls here.</summary>
    public ILinuxKernel Kernel => _kernel;

    /// <summary>How many times a wait of the owner has returned: a victim that is waited for without polling adds none.</summary>
    public long WaitReturns => Interlocked.Read(ref _waitReturns);

    /// <summary>Runs <paramref name="work"/> on the owner and returns its result; inline when already there.</summary>
    /// <remarks>
    /// The caller blocks on an event of its own, not on a Task: a Task wait on a pool thread tells the thread pool
    /// that the thread is blocked, and the pool adds threads at once to make up for it. The owner answers within
    /// microseconds, so that compensation is wrong here; with 1,000 victims whose control loops call Resume and
    /// StepOverBreakpoint from pool threads it grew the pool to 30 threads spinning for work
    /// (bench/ProcHex.Scale). An ordinary blocking wait leaves the pool at its usual size.
    /// </remarks>
    public T Invoke<T>(Func<T> work)
    {
        if (IsCurrent)
        {
            return work();
        }

        // One call at a time per calling thread (it waits here), so each thread reuses one event.
        var done = t_invokeDone ??= new ManualResetEventSlim(false);
        done.Reset();
        var call = new SyncCall<T>(work, done, QueuedAt());
        _work.Enqueue(call.Run);
        Wake();
        done.Wait();
        call.Failure?.Throw();
        return call.Result;
    }

    /// <summary>
    /// Runs <paramref name="work"/> on the owner; inline when already there. The per-hit calls (Resume) come
    /// here with a cached delegate, and the call record is the calling thread's own, reused: nothing is allocated.
    /// </summary>
    public void Invoke(Action work)
    {
        if (IsCurrent)
        {
            work();
            return;
        }

        var call = t_actionCall ??= new ActionCall();
        call.Prepare(work, QueuedAt());
        _work.Enqueue(call.Run);
        Wake();
        call.Done.Wait();
        call.ThrowIfFailed();
    }

    /// <summary>
    /// When a call was queued, for <c>prochex.owner.queue_delay</c>; 0 while nobody listens, so that a call costs no
    /// clock read then. The owner is the process's, so is the meter it measures into (<see cref="ProcHexMetrics.Shared"/>).
    /// </summary>
    private static long QueuedAt() => ProcHexMetrics.Shared.OwnerQueueDelayEnabled ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;

    /// <summary>Records how long the call queued at <paramref name="queuedAt"/> waited; on the owner, as it starts.</summary>
    private static void Started(long queuedAt)
    {
        if (queuedAt != 0)
        {
            ProcHexMetrics.Shared.RecordOwnerQueueDelay(System.Diagnostics.Stopwatch.GetElapsedTime(queuedAt));
        }
    }

    [ThreadStatic]
    private static ManualResetEventSlim? t_invokeDone;

    [ThreadStatic]
    private static ActionCall? t_actionCall;

    /// <summary>A calling thread's one blocking <see cref="Invoke(Action)"/> at a time, reused call after call.</summary>
    private sealed class ActionCall
    {
        private Action? _work;
        private long _queuedAt;
        private System.Runtime.ExceptionServices.ExceptionDispatchInfo? _failure;

        public ActionCall() => Run = RunOnOwner;

        public ManualResetEventSlim Done { get; } = new(false);

        /// <summary>The delegate the owner runs, made once.</summary>
        public Action Run { get; }

        public void Prepare(Action work, long queuedAt)
        {
            _work = work;
            _queuedAt = queuedAt;
            _failure = null;
            Done.Reset();
        }

        public void ThrowIfFailed() => _failure?.Throw();

        private void RunOnOwner()
        {
            Started(_queuedAt);
            try
            {
                _work!();
            }
            catch (Exception e)
            {
                _failure = System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e);
            }
            finally
            {
                _work = null;
                Done.Set();
            }
        }
    }

    /// <summary>One blocking <see cref="Invoke{T}"/>: runs on the owner, then sets the caller's event.</summary>
    private sealed class SyncCall<T>(Func<T> work, ManualResetEventSlim done, long queuedAt)
    {
        public T Result { get; private set; } = default!;

        public System.Runtime.ExceptionServices.ExceptionDispatchInfo? Failure { get; private set; }

        public void Run()
        {
            Started(queuedAt);
            try
            {
                Result = work();
            }
            catch (Exception e)
            {
                Failure = System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e);
            }
            finally
            {
                done.Set();
            }
        }
    }

    /// <summary>Queues <paramref name="work"/> for the owner and returns at once. Off the owner only.</summary>
    public void Post(Action work)
    {
        var queuedAt = QueuedAt();
        _work.Enqueue(queuedAt == 0 ? work : () =>
        {
            Started(queuedAt);
            work();
        });
        Wake();
    }

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
        var queuedAt = QueuedAt();
        _work.Enqueue(() =>
        {
            Started(queuedAt);
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

    /// <summary>Whether the statuses of <paramref name="tid"/> go to a victim. Owner only.</summary>
    public bool IsRegistered(int tid) => _byTid.ContainsKey(tid);

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
    public void Defer(IDeferredCompletion completion) => _deferred.Enqueue(completion);

    /// <summary>Runs the deferred completions, those they defer in turn included; true when there were any.</summary>
    private bool RunDeferred()
    {
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

    private void StartWakeProcess() => Volatile.Write(ref _wakePid, _kernel.StartWakeProcess());
}

/// <summary>Work the owner runs between statuses, never inside the handling of one (see <see cref="OwnerThread.Defer"/>).</summary>
internal interface IDeferredCompletion
{
    void Complete();
}

/// <summary>Receives the wait statuses of the tids registered for it, on the owner thread.</summary>
internal interface ITraceeStatusSink
{
    void OnStatus(int tid, WaitStatus status);
}
