using ProcHex.Victims;

namespace ProcHex.Notifications;

/// <summary>
/// Deaths, losses and callback failures waiting for the client (S19): first in, first out; queued once per
/// event; purged when their victim is destroyed. Every enqueue wakes whoever waits.
/// </summary>
internal sealed class NotificationQueue(ProcHexMetrics metrics)
{
    private readonly Lock _gate = new();
    private readonly LinkedList<VictimNotification> _pending = new();
    private readonly LinkedList<Waiter> _waiters = new();

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

    /// <summary>Hands the notification to the longest waiting reader, or queues it when nobody waits.</summary>
    public void Enqueue(VictimNotification notification)
    {
        Waiter? reader = null;
        lock (_gate)
        {
            if (_waiters.First is { } first)
            {
                _waiters.RemoveFirst();
                reader = first.Value;
            }
            else
            {
                _pending.AddLast(notification);
                metrics.NotificationsQueued(1);
            }
        }

        reader?.Completion.TrySetResult(notification);
    }

    public bool TryDequeue(out VictimNotification notification)
    {
        lock (_gate)
        {
            if (_pending.First is { } first)
            {
                _pending.RemoveFirst();
                notification = first.Value;
                metrics.NotificationsQueued(-1);
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

            metrics.NotificationsQueued(-removed);
            return removed;
        }
    }

    /// <summary>
    /// Takes the next notification, waiting up to <paramref name="timeout"/> for one to arrive (null when none did).
    /// The wait is a plain task completed by whoever comes first (an enqueue, the session clock's timer, or the
    /// token) with its continuation posted to the caller's context, so a single-threaded simulation stays on its
    /// thread and virtual time drives the deadline.
    /// </summary>
    public Task<VictimNotification?> DequeueAsync(TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Waiter waiter;
        lock (_gate)
        {
            if (_pending.First is { } first)
            {
                _pending.RemoveFirst();
                metrics.NotificationsQueued(-1);
                return Task.FromResult<VictimNotification?>(first.Value);
            }

            if (timeout == TimeSpan.Zero)
            {
                return Task.FromResult<VictimNotification?>(null);
            }

            waiter = new Waiter(this);
            waiter.Node = _waiters.AddLast(waiter);
        }

        return waiter.WaitAsync(timeout, time, cancellationToken);
    }

    /// <summary>One reader blocked in <see cref="DequeueAsync"/>.</summary>
    private sealed class Waiter(NotificationQueue queue)
    {
        public TaskCompletionSource<VictimNotification?> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public LinkedListNode<Waiter>? Node { get; set; }

        public async Task<VictimNotification?> WaitAsync(TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
        {
            using var timer = timeout == Timeout.InfiniteTimeSpan
                ? null
                : time.CreateTimer(static s => ((Waiter)s!).GiveUp(canceled: default), this, timeout, Timeout.InfiniteTimeSpan);
            using var registration = cancellationToken.Register(static (s, token) => ((Waiter)s!).GiveUp(token), this);
            return await Completion.Task.ConfigureAwait(true);
        }

        /// <summary>Leaves the queue unless an enqueue already chose this reader (then its result stands).</summary>
        private void GiveUp(CancellationToken canceled)
        {
            lock (queue._gate)
            {
                if (Node!.List is null)
                {
                    return;
                }

                queue._waiters.Remove(Node);
            }

            if (canceled.IsCancellationRequested)
            {
                Completion.TrySetCanceled(canceled);
            }
            else
            {
                Completion.TrySetResult(null);
            }
        }
    }
}
