using System.Diagnostics.Metrics;
using ProcHex.Ports;

namespace ProcHex;

/// <summary>
/// ProcHex's instruments, on a <see cref="System.Diagnostics.Metrics.Meter"/> named <c>ProcHex</c>
/// (<see cref="ProcHexDiagnostics.MeterName"/>). Names follow the OpenTelemetry semantic conventions, units are UCUM:
/// <list type="bullet">
/// <item><c>prochex.victims</c> (<c>{victim}</c>, observable up-down counter, tag <c>prochex.victim.state</c>): victims held, by lifecycle state.</item>
/// <item><c>prochex.stops</c> (<c>{stop}</c>, counter, tag <c>prochex.stop.reason</c>): stops the control loops answered.</item>
/// <item><c>prochex.breakpoint.hits</c> (<c>{hit}</c>, observable counter, tag <c>prochex.breakpoint.mode</c> = <c>trap</c> | <c>in_victim</c>): hits of client breakpoints; in-victim counters are read from the memory they share when a listener collects.</item>
/// <item><c>prochex.counters.stopped</c> (<c>s</c>, histogram, tag <c>prochex.counters.change</c> = <c>install</c> | <c>remove</c> | <c>arena</c>): how long in-victim counters kept every thread stopped.</item>
/// <item><c>prochex.step_overs</c> (<c>{step_over}</c>, counter, tag <c>prochex.step_over.kind</c> = <c>emulated</c> | <c>out_of_line</c>): how the backend ran the instruction under a trap.</item>
/// <item><c>prochex.owner.queue_delay</c> (<c>s</c>, histogram): how long a call waited for the Linux ptrace owner thread.</item>
/// <item><c>prochex.notifications.queued</c> (<c>{notification}</c>, observable up-down counter): notifications nobody has taken yet.</item>
/// </list>
/// </summary>
/// <remarks>
/// One instance per application: <c>AddProcHex</c> registers one made from the container's
/// <see cref="IMeterFactory"/> when there is one (the generic host has), and <see cref="Shared"/> otherwise; a
/// session or backend made without dependency injection uses <see cref="Shared"/>. Every counter is checked for a
/// listener before anything is measured and tags are built once, so a breakpoint hit nobody listens to costs a few
/// field reads. The two levels (victims by state, notifications queued) are kept in plain counts, two interlocked
/// operations per move, and observed when a listener asks: one that starts listening late (dotnet-counters attaching to a
/// running program) reads the true level, not the moves it happened to see. Backends report what only they know (<see cref="RecordStepOver"/>, <see cref="RecordOwnerQueueDelay"/>).
/// </remarks>
public sealed class ProcHexMetrics
{
    private static readonly KeyValuePair<string, object?>[] StateTags = Tags("prochex.victim.state", Enum.GetNames<VictimState>());
    private static readonly KeyValuePair<string, object?>[] ReasonTags = Tags("prochex.stop.reason", Enum.GetNames<StopReason>());
    private static readonly KeyValuePair<string, object?> ExitedTag = new("prochex.stop.reason", "exited");
    private static readonly KeyValuePair<string, object?> LostTag = new("prochex.stop.reason", "lost");
    private static readonly KeyValuePair<string, object?> TrapTag = new("prochex.breakpoint.mode", "trap");
    private static readonly KeyValuePair<string, object?>[] StepOverTags = Tags("prochex.step_over.kind", Enum.GetNames<StepOverKind>());
    private static readonly KeyValuePair<string, object?>[] CounterChangeTags = [new("prochex.counters.change", "install"), new("prochex.counters.change", "remove"), new("prochex.counters.change", "arena")];

    private readonly long[] _victimsByState = new long[StateTags.Length];
    private long _notificationsQueued;
    private readonly Counter<long> _stops;
    private static readonly KeyValuePair<string, object?> InVictimTag = new("prochex.breakpoint.mode", "in_victim");
    private long _trapHits;
    private readonly Lock _countersGate = new();
    private readonly HashSet<ISharedCounter> _liveCounters = [];
    private long _retiredCounterHits;
    private readonly Counter<long> _stepOvers;
    private readonly Histogram<double> _ownerQueueDelay;
    private readonly Histogram<double> _countersStopped;

    /// <summary>Instruments on a meter made by <paramref name="meterFactory"/> (disposed with it).</summary>
    public ProcHexMetrics(IMeterFactory meterFactory)
        : this(Create(meterFactory))
    {
    }

    private ProcHexMetrics(Meter meter)
    {
        Meter = meter;
        meter.CreateObservableUpDownCounter("prochex.victims", ObserveVictims, "{victim}", "Victims held, by lifecycle state.");
        _stops = meter.CreateCounter<long>("prochex.stops", "{stop}", "Stops, exits and losses the control loops answered, by reason.");
        meter.CreateObservableCounter("prochex.breakpoint.hits", ObserveHits, "{hit}", "Hits of client breakpoints, by mode: traps, and calls counted by in-victim counters.");
        _stepOvers = meter.CreateCounter<long>("prochex.step_overs", "{step_over}", "Instructions under a trap run by the backend, by kind.");
        _ownerQueueDelay = meter.CreateHistogram(
            "prochex.owner.queue_delay",
            "s",
            "How long a call waited in the Linux ptrace owner thread's queue before it ran.",
            tags: null,
            new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.000_001, 0.000_005, 0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1] });
        _countersStopped = meter.CreateHistogram(
            "prochex.counters.stopped",
            "s",
            "How long every thread of a victim stayed stopped while in-victim counters went in or out (one batch) or their arena was mapped, by change.",
            tags: null,
            new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1] });
        meter.CreateObservableUpDownCounter(
            "prochex.notifications.queued",
            () => Interlocked.Read(ref _notificationsQueued),
            "{notification}",
            "Notifications queued and not yet taken.");
    }

    /// <summary>The process-wide instruments, on a static <c>ProcHex</c> meter: for code made without dependency injection.</summary>
    public static ProcHexMetrics Shared { get; } = new(new Meter(ProcHexDiagnostics.MeterName, ProcHexDiagnostics.Version));

    /// <summary>The meter the instruments belong to.</summary>
    public Meter Meter { get; }

    /// <summary>True while someone listens to <c>prochex.owner.queue_delay</c>: only then is the time taken.</summary>
    public bool OwnerQueueDelayEnabled => _ownerQueueDelay.Enabled;

    /// <summary>For backends: one breakpoint step-over, and how it was made.</summary>
    public void RecordStepOver(StepOverKind kind)
    {
        if (_stepOvers.Enabled)
        {
            _stepOvers.Add(1, StepOverTags[(int)kind]);
        }
    }

    /// <summary>For backends: how long a batch of in-victim counters kept the victim's threads stopped, and for what.</summary>
    public void RecordCountersStopped(CounterChange change, TimeSpan stopped) => _countersStopped.Record(stopped.TotalSeconds, CounterChangeTags[(int)change]);

    /// <summary>For backends: how long one call waited in the owner thread's queue.</summary>
    public void RecordOwnerQueueDelay(TimeSpan delay) => _ownerQueueDelay.Record(delay.TotalSeconds);

    /// <summary>A victim moved from <paramref name="from"/> (null: it is new) to <paramref name="to"/> (released: it is gone).</summary>
    internal void VictimMoved(VictimState? from, VictimState to)
    {
        if (from is { } old)
        {
            Interlocked.Decrement(ref _victimsByState[(int)old]);
        }

        if (to != VictimState.Released)
        {
            Interlocked.Increment(ref _victimsByState[(int)to]);
        }
    }

    internal void StopAnswered(in StopEvent stop)
    {
        if (_stops.Enabled)
        {
            _stops.Add(1, stop.Kind switch
            {
                StopKind.Exited => ExitedTag,
                StopKind.Lost => LostTag,
                _ => ReasonTags[(int)stop.Reason],
            });
        }
    }

    internal void TrapHit() => Interlocked.Increment(ref _trapHits);

    /// <summary>In-victim counters now counting: their values join <c>prochex.breakpoint.hits{mode=in_victim}</c>.</summary>
    internal void CountersInstalled(IEnumerable<ISharedCounter> counters)
    {
        lock (_countersGate)
        {
            _liveCounters.UnionWith(counters);
        }
    }

    /// <summary>
    /// Counters that count no more (removed, gone with an exec or an unloaded object, their victim released): their
    /// last values are kept as one sum, so the total never goes down and nothing of theirs is held.
    /// </summary>
    internal void CountersRetired(IEnumerable<ISharedCounter> counters)
    {
        lock (_countersGate)
        {
            foreach (var counter in counters)
            {
                if (_liveCounters.Remove(counter))
                {
                    _retiredCounterHits += (long)counter.Value;
                }
            }
        }
    }

    private IEnumerable<Measurement<long>> ObserveHits()
    {
        long inVictim;
        lock (_countersGate)
        {
            inVictim = _retiredCounterHits;
            foreach (var counter in _liveCounters)
            {
                inVictim += (long)counter.Value;
            }
        }

        return [new(Interlocked.Read(ref _trapHits), TrapTag), new(inVictim, InVictimTag)];
    }

    internal void NotificationsQueued(int delta)
    {
        if (delta != 0)
        {
            Interlocked.Add(ref _notificationsQueued, delta);
        }
    }

    /// <summary>Every state but released (a released victim is no longer held), zeros included so that a series ends at 0.</summary>
    private IEnumerable<Measurement<long>> ObserveVictims()
    {
        var measurements = new Measurement<long>[StateTags.Length - 1];
        var i = 0;
        for (var state = 0; state < StateTags.Length; state++)
        {
            if (state != (int)VictimState.Released)
            {
                measurements[i++] = new Measurement<long>(Interlocked.Read(ref _victimsByState[state]), StateTags[state]);
            }
        }

        return measurements;
    }

    private static Meter Create(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        return meterFactory.Create(new MeterOptions(ProcHexDiagnostics.MeterName) { Version = ProcHexDiagnostics.Version });
    }

    private static KeyValuePair<string, object?>[] Tags(string key, string[] names) =>
        [.. names.Select(n => new KeyValuePair<string, object?>(key, ProcHexDiagnostics.Snake(n)))];
}

/// <summary>What a stop of every thread was for, in <c>prochex.counters.stopped</c> (tag <c>prochex.counters.change</c>).</summary>
public enum CounterChange
{
    /// <summary>Entries patched with their jumps (<c>install</c>).</summary>
    Install,

    /// <summary>Entries given their bytes back (<c>remove</c>).</summary>
    Remove,

    /// <summary>Counter arenas mapped in the victim by injected system calls, before a first install near them (<c>arena</c>).</summary>
    Arena,
}
