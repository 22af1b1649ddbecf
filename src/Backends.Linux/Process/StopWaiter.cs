using System.Threading.Tasks.Sources;
using ProcHex.Ports;

namespace ProcHex.Backends.Linux;

/// <summary>
/// A victim's one pending wait for a stop, reused wait after wait: a breakpoint hit allocates no Task. Completed
/// once per wait, by a stop or by cancellation, whichever comes first.
/// </summary>
internal sealed class StopWaiter : IValueTaskSource<StopEvent>
{
    private const int Awaiting = 0, ContinuationRegistered = 1, ResultParked = 2;

    private ManualResetValueTaskSourceCore<StopEvent> _core = new() { RunContinuationsAsynchronously = true };
    private int _completed = 1;
    private CancellationTokenRegistration _cancellation;
    private Action<Action>? _runThere;
    private int _handOff;
    private StopEvent _parked;

    /// <summary>
    /// Starts the next wait; the previous one must have completed and been awaited. With <paramref name="runThere"/>
    /// (a wait begun off the thread that answers it, to move its awaiter there), an answer that comes before the
    /// awaiter registered its continuation is handed to <paramref name="runThere"/> instead of being taken up by the
    /// awaiter on its own thread: the move then happens however the two race.
    /// </summary>
    public ValueTask<StopEvent> Begin(Action<Action>? runThere = null)
    {
        _core.Reset();
        _runThere = runThere;
        _handOff = Awaiting;
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
        if (inline && _runThere is not null)
        {
            _parked = stop;
            if (Interlocked.CompareExchange(ref _handOff, ResultParked, Awaiting) == Awaiting)
            {
                return true; // the awaiter has not registered yet: OnCompleted hands the result over (see Begin)
            }
        }

        _core.RunContinuationsAsynchronously = !inline;
        _core.SetResult(stop);
        return true;
    }

    public StopEvent GetResult(short token) => _core.GetResult(token);

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        _core.OnCompleted(continuation, state, token, flags);
        if (_runThere is { } runThere && Interlocked.CompareExchange(ref _handOff, ContinuationRegistered, Awaiting) == ResultParked)
        {
            runThere(() =>
            {
                _core.RunContinuationsAsynchronously = false;
                _core.SetResult(_parked);
            });
        }
    }
}
