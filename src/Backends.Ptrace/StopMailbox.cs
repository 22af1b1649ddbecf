using ProcHex.Ports;

namespace ProcHex.Backends.Ptrace;

/// <summary>
/// The stops a ptrace adapter has decided on and the core has not taken yet: the port's "one at a time, never
/// lost" (<see cref="ITracedProcess.WaitForStopAsync"/>). Stops come out in the order they were posted. An exit or
/// a loss is final: nothing posted after it counts, and once the queue is empty every take returns it again. A waiter
/// that is not handed stops directly can await <see cref="NextArrival"/>.
/// </summary>
/// <remarks>
/// Not thread-safe: each adapter guards it with the lock that also guards its waiter (Linux's event lock, FreeBSD's
/// gate), so posting a stop and handing it to a pending wait are one step. Posting allocates nothing.
/// </remarks>
/// <typeparam name="TTag">What the adapter keeps with a stop until it is taken (Linux: the thread held for it).</typeparam>
internal sealed class StopMailbox<TTag>
{
    private readonly Queue<(StopEvent Stop, TTag Tag)> _queue = new();
    private StopEvent? _final;
    private TaskCompletionSource? _arrival;

    /// <summary>How many posted stops wait to be taken (the final one not counted once taken).</summary>
    public int Count => _queue.Count;

    /// <summary>The exit or loss posted, once there is one.</summary>
    public StopEvent? Final => _final;

    /// <summary>Queues <paramref name="stop"/>; false, and nothing queued, when a final stop came before it.</summary>
    public bool Post(StopEvent stop, TTag tag)
    {
        if (_final is not null)
        {
            return false;
        }

        if (stop.Kind != StopKind.Stopped)
        {
            _final = stop;
        }

        _queue.Enqueue((stop, tag));
        _arrival?.TrySetResult();
        _arrival = null;
        return true;
    }

    /// <summary>True when a stop for <paramref name="reason"/> waits to be taken.</summary>
    public bool Holds(StopReason reason)
    {
        foreach (var (stop, _) in _queue)
        {
            if (stop.Kind == StopKind.Stopped && stop.Reason == reason)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The oldest queued stop and its tag; false when the queue is empty (the final stop is then <see cref="Final"/>).</summary>
    public bool TryDequeue(out StopEvent stop, out TTag tag)
    {
        if (_queue.TryDequeue(out var entry))
        {
            (stop, tag) = entry;
            return true;
        }

        stop = default;
        tag = default!;
        return false;
    }

    /// <summary>The oldest queued stop, or the final one again; false when there is neither.</summary>
    public bool TryTake(out StopEvent stop)
    {
        if (TryDequeue(out stop, out _))
        {
            return true;
        }

        if (_final is { } final)
        {
            stop = final;
            return true;
        }

        return false;
    }

    /// <summary>
    /// Drops the queued stops whose tag <paramref name="drop"/> names (they can no longer be handled: an exec destroyed
    /// their threads), calling <paramref name="dropped"/> for each; the others keep their order.
    /// </summary>
    public void RemoveWhere(Func<TTag, bool> drop, Action<TTag> dropped)
    {
        for (var n = _queue.Count; n > 0; n--)
        {
            var entry = _queue.Dequeue();
            if (drop(entry.Tag))
            {
                dropped(entry.Tag);
            }
            else
            {
                _queue.Enqueue(entry);
            }
        }
    }

    /// <summary>A task that completes at the next <see cref="Post"/> (for a waiter that watches other sources too).</summary>
    public Task NextArrival()
    {
        _arrival = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return _arrival.Task;
    }
}
