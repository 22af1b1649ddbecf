using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace ProcHex.Scenarios.Telemetry;

/// <summary>
/// Meters scoped to this factory (<see cref="Meter.Scope"/>), so that a listener tells them from everyone else's:
/// listeners are process-wide and tests run in parallel.
/// </summary>
public sealed class ScopedMeterFactory : IMeterFactory
{
    private readonly List<Meter> _meters = [];

    public Meter Create(MeterOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var meter = new Meter(options.Name, options.Version, options.Tags, scope: this);
        lock (_meters)
        {
            _meters.Add(meter);
        }

        return meter;
    }

    public void Dispose()
    {
        lock (_meters)
        {
            _meters.ForEach(m => m.Dispose());
        }
    }
}

/// <summary>
/// Every measurement of the ProcHex meters of one scope (a <see cref="ScopedMeterFactory"/>, or null for the
/// process-wide <see cref="ProcHexMetrics.Shared"/>), read with a <see cref="MeterListener"/> as a user would.
/// </summary>
public sealed class MeasurementRecorder : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentQueue<Measurement> _all = new();
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _firsts = new();
    private readonly Lock _observing = new();
    private List<Measurement>? _observed;

    public MeasurementRecorder(object? scope)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == ProcHexDiagnostics.MeterName && instrument.Meter.Scope == scope)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Add(instrument, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Add(instrument, value, tags));
        _listener.Start();
    }

    /// <summary>The sum of a counter's measurements, of those with <paramref name="tag"/> when given.</summary>
    public long Sum(string instrument, (string Key, string Value)? tag = null) => (long)Matching(_all, instrument, tag).Sum(m => m.Value);

    /// <summary>How many measurements <paramref name="instrument"/> made.</summary>
    public int Count(string instrument) => Matching(_all, instrument, null).Count();

    /// <summary>The least of <paramref name="instrument"/>'s measurements.</summary>
    public double Min(string instrument) => Matching(_all, instrument, null).Min(m => m.Value);

    /// <summary>
    /// The level an observable <paramref name="instrument"/> reports now (of those with <paramref name="tag"/> when
    /// given), as a listener that just started would read it.
    /// </summary>
    public long Observe(string instrument, (string Key, string Value)? tag = null)
    {
        lock (_observing)
        {
            _observed = [];
            _listener.RecordObservableInstruments();
            var now = _observed;
            _observed = null;
            return (long)Matching(now, instrument, tag).Sum(m => m.Value);
        }
    }

    /// <summary>Completes once <paramref name="instrument"/> has measured something with <paramref name="tag"/>.</summary>
    public Task Measured(string instrument, (string Key, string Value) tag) => First($"{instrument}|{tag.Key}={tag.Value}").Task;

    public void Dispose() => _listener.Dispose();

    private static IEnumerable<Measurement> Matching(IEnumerable<Measurement> measurements, string instrument, (string Key, string Value)? tag) =>
        measurements.Where(m => m.Name == instrument && (tag is not { } t || m.Tags.Contains(new(t.Key, t.Value))));

    private void Add(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var measured = new Measurement(instrument.Name, value, tags.ToArray());
        if (instrument.IsObservable)
        {
            _observed?.Add(measured);
            return;
        }

        _all.Enqueue(measured);
        foreach (var (key, tag) in measured.Tags)
        {
            First($"{instrument.Name}|{key}={tag}").TrySetResult();
        }
    }

    private TaskCompletionSource First(string key) =>
        _firsts.GetOrAdd(key, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    private sealed record Measurement(string Name, double Value, KeyValuePair<string, object?>[] Tags);
}
