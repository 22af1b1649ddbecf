namespace ProcHex.Backends.Linux;

/// <summary>Work handed to the owner from other threads: blocking calls, posts and asynchronous calls; inline on the owner itself.</summary>
internal sealed partial class OwnerThread
{
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
}
