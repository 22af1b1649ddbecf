namespace ProcHex.Backends.Fake;

/// <summary>
/// Waiting for the fake world to reach a state without polling: a polling loop (await Task.Yield) keeps the
/// deterministic pump busy forever and the victims never run, so conditions are checked by the kernel instead.
/// </summary>
public sealed partial class FakeKernel
{
    private readonly List<Watch> _watches = [];
    private long _stepCount;

    /// <summary>Kernel steps taken so far.</summary>
    public long StepCount
    {
        get { lock (_gate) { return _stepCount; } }
    }

    /// <summary>
    /// Completes once <paramref name="condition"/> holds: checked now, after every step and after every outside
    /// operation (signals, releases). The condition runs under the kernel lock: it may query the kernel, nothing more.
    /// </summary>
    public Task WaitUntilAsync(Func<FakeKernel, bool> condition, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(condition);
        lock (_gate)
        {
            if (condition(this))
            {
                return Task.CompletedTask;
            }

            var watch = new Watch(condition, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            _watches.Add(watch);
            if (cancellationToken.CanBeCanceled)
            {
                watch.Registration = cancellationToken.UnsafeRegister(_ => Abandon(watch, cancellationToken), null);
            }

            return watch.Done.Task;
        }
    }

    /// <summary>Completes after <paramref name="steps"/> more kernel steps: lets the victims run a while.</summary>
    public Task WaitStepsAsync(int steps, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(steps);
        long target;
        lock (_gate)
        {
            target = _stepCount + steps;
        }

        return WaitUntilAsync(k => k._stepCount >= target, cancellationToken);
    }

    private void Abandon(Watch watch, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _watches.Remove(watch);
        }

        watch.Done.TrySetCanceled(cancellationToken);
    }

    private void CheckWatches()
    {
        for (var i = _watches.Count - 1; i >= 0; i--)
        {
            var watch = _watches[i];
            bool holds;
            try
            {
                holds = watch.Condition(this);
            }
#pragma warning disable CA1031 // The condition's failure belongs to whoever waits on it, not to the stepping thread.
            catch (Exception e)
#pragma warning restore CA1031
            {
                _watches.RemoveAt(i);
                watch.Registration.Unregister();
                watch.Done.TrySetException(e);
                continue;
            }

            if (holds)
            {
                _watches.RemoveAt(i);
                watch.Registration.Unregister();
                watch.Done.TrySetResult();
            }
        }
    }

    private sealed class Watch(Func<FakeKernel, bool> condition, TaskCompletionSource done)
    {
        public Func<FakeKernel, bool> Condition { get; } = condition;

        public TaskCompletionSource Done { get; } = done;

        public CancellationTokenRegistration Registration { get; set; }
    }
}
