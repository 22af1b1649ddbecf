using ProcHex.Victims;

namespace ProcHex.Notifications;

/// <summary>
/// Deaths, losses and callback failures waiting for the client (S19): first in, first out; queued once per
/// event; purged when their victim is destroyed. Every enqueue wakes whoever waits.
/// </summary>
internal sealed class NotificationQueue
{
    private readonly Lock _gate = new();
    private readonly LinkedList<VictimNotification> _pending = new();
    private TaskCompletionSource _arrived = NewSignal();

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _pending.Count;
            }
        }
    }

    public void Enqueue(VictimNotification notification)
    {
        TaskCompletionSource arrived;
        lock (_gate)
        {
            _pending.AddLast(notification);
            arrived = _arrived;
            _arrived = NewSignal();
        }

        arrived.TrySetResult();
    }

    public bool TryDequeue(out VictimNotification notification)
    {
        lock (_gate)
        {
            if (_pending.First is { } first)
            {
                _pending.RemoveFirst();
                notification = first.Value;
                return true;
            }
        }

        notification = null!;
        return false;
    }

    /// <summary>Removes every notification of <paramref name="victim"/> (destroy, S9).</summary>
    public int Purge(Victim victim)
    {
        lock (_gate)
        {
            var removed = 0;
            for (var node = _pending.First; node is not null;)
            {
                var next = node.Next;
                if (node.Value.Handle.Victim == victim)
                {
                    _pending.Remove(node);
                    removed++;
                }

                node = next;
            }

            return removed;
        }
    }

    /// <summary>Takes the next notification, waiting up to <paramref name="timeout"/> for one to arrive.</summary>
    public async Task<VictimNotification?> DequeueAsync(TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // The deadline runs on the session's clock so that the simulation's virtual time drives it too.
        using var timer = timeout == Timeout.InfiniteTimeSpan
            ? null
            : time.CreateTimer(static s => ((CancellationTokenSource)s!).Cancel(), deadline, timeout, Timeout.InfiniteTimeSpan);

        while (true)
        {
            Task arrived;
            lock (_gate)
            {
                if (_pending.First is { } first)
                {
                    _pending.RemoveFirst();
                    return first.Value;
                }

                arrived = _arrived.Task;
            }

            try
            {
                await arrived.WaitAsync(deadline.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return null;
            }
        }
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
