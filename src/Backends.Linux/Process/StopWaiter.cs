using System.Threading.Tasks.Sources;
using ProcHex.Ports;

namespace ProcHex.Backends.Linux;

/// <summary>
/// A victim's one pending wait for a stop, reused wait after wait: a breakpoint hit allocates no Task. Completed
/// once per wait, by a stop or by cancellation, whichever comes first.
/// </summary>
internal sealed class StopWaiter : IValueTaskSource<StopEvent>
{
    private ManualResetValueTaskSourceCore<StopEvent> _core = new() { RunContinuationsAsynchronously = true };
    private int _completed = 1;
    private CancellationTokenRegistration _cancellation;

    /// <summary>Starts the next wait; the previous one must have completed and been awaited.</summary>
    public ValueTask<StopEvent> Begin()
    {
        _core.Reset();
        Volatile.Write(ref _completed, 0);
        return new ValueTask<StopEvent>(this, _core.Version);
    }

    /// <summary>
    /// Cancels this wait when <paramref name="token"/> is, if <paramref name="tryUnlink"/> says no stop has
    /// claimed it yet (a stop that has, completes it instead: taken from the queue, it must not be lost).
    /// </summary>
    public void CancelOn(Func<bool> tryUnlink, CancellationToken token) =>
        _cancellation = token.Register(() =>
        {
            if (tryUnlink() && Interlocked.Exchange(ref _completed, 1) == 0)
            {
                _core.RunContinuationsAsynchronously = true;
                _core.SetException(new OperationCanceledException(token));
            }
        });

    /// <summary>
    /// Completes the wait with <paramref name="stop"/>. <paramref name="inline"/>: the waiter's continuation runs
    /// now, on this thread (unless it captured a synchronization context); otherwise on the thread pool.
    /// </summary>
    public bool TrySetResult(StopEvent stop, bool inline)
    {
        if (Interlocked.Exchange(ref _completed, 1) != 0)
        {
            return false;
        }

        // Before the result: once it is set, the next wait may begin and must not meet this wait's cancellation.
        var cancellation = _cancellation;
        _cancellation = default;
        cancellation.Dispose();
        _core.RunContinuationsAsynchronously = !inline;
        _core.SetResult(stop);
        return true;
    }

    public StopEvent GetResult(short token) => _core.GetResult(token);

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
