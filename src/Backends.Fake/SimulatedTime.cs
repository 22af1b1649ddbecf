namespace ProcHex.Backends.Fake;

/// <summary>
/// A clock that moves only when the simulation moves it: a little per kernel step, and straight to the next
/// timer when nothing else can happen. Timeouts in the core then fire at the same point of every replay.
/// </summary>
public sealed class SimulatedTime : TimeProvider
{
    private readonly Lock _gate = new();
    private readonly List<SimulatedTimer> _timers = [];
    private readonly DateTimeOffset _start;
    private DateTimeOffset _now;
    private long _sequence;

    /// <summary>A clock that starts at <paramref name="start"/> (a fixed date when null) and moves only when told.</summary>
    /// <param name="start">The starting time.</param>
    public SimulatedTime(DateTimeOffset? start = null)
    {
        _start = start ?? new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        _now = _start;
    }

    /// <inheritdoc/>
    public override DateTimeOffset GetUtcNow()
    {
        lock (_gate)
        {
            return _now;
        }
    }

    /// <inheritdoc/>
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    /// <inheritdoc/>
    public override long GetTimestamp() => (GetUtcNow() - _start).Ticks;

    /// <inheritdoc/>
    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    /// <inheritdoc/>
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        ArgumentNullException.ThrowIfNull(callback);
        var timer = new SimulatedTimer(this, callback, state);
        timer.Change(dueTime, period);
        return timer;
    }

    /// <summary>Moves the clock forward, firing every timer that falls due on the way, in order.</summary>
    public void Advance(TimeSpan by)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(by, TimeSpan.Zero);
        DateTimeOffset target;
        lock (_gate)
        {
            target = _now + by;
        }

        while (TakeDue(target) is { } due)
        {
            due.Fire();
        }

        lock (_gate)
        {
            _now = target;
        }
    }

    /// <summary>Jumps to the earliest pending timer and fires it; false when no timer is pending.</summary>
    public bool FireNextTimer()
    {
        if (TakeDue(DateTimeOffset.MaxValue) is not { } due)
        {
            return false;
        }

        due.Fire();
        return true;
    }

    private SimulatedTimer? TakeDue(DateTimeOffset limit)
    {
        lock (_gate)
        {
            var next = _timers.Where(t => t.Due <= limit).OrderBy(t => t.Due).ThenBy(t => t.Sequence).FirstOrDefault();
            if (next is null)
            {
                return null;
            }

            if (next.Due > _now)
            {
                _now = next.Due;
            }

            if (next.Period > TimeSpan.Zero)
            {
                next.Due = _now + next.Period;
            }
            else
            {
                _timers.Remove(next);
            }

            return next;
        }
    }

    private sealed class SimulatedTimer(SimulatedTime time, TimerCallback callback, object? state) : ITimer
    {
        public DateTimeOffset Due { get; set; }

        public TimeSpan Period { get; private set; }

        public long Sequence { get; private set; }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            lock (time._gate)
            {
                time._timers.Remove(this);
                if (dueTime == Timeout.InfiniteTimeSpan)
                {
                    return true;
                }

                Due = time._now + dueTime;
                Period = period == Timeout.InfiniteTimeSpan ? TimeSpan.Zero : period;
                Sequence = time._sequence++;
                time._timers.Add(this);
                return true;
            }
        }

        public void Fire() => callback(state);

        public void Dispose()
        {
            lock (time._gate)
            {
                time._timers.Remove(this);
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
