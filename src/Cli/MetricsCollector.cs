using System.Diagnostics.Metrics;
using System.Globalization;

namespace ProcHex.Cli;

/// <summary>One instrument's final value for one set of tags: a sum, or a histogram's count, sum and maximum.</summary>
internal sealed record MetricValue(string Name, string? Unit, IReadOnlyDictionary<string, string> Tags, long? Value, long? Count, double? Sum, double? Max)
{
    /// <summary>The tags as <c>key=value</c> pairs, for the text table.</summary>
    public string TagText => string.Join(' ', Tags.Select(t => $"{t.Key}={t.Value}"));
}

/// <summary>
/// <c>--metrics</c>: listens to every instrument of the <c>ProcHex</c> meter for the whole command and sums what they
/// measure, per instrument and tag set, so that their final values can be printed at the end; the observable
/// levels (victims by state, notifications queued) are read at the end. An in-process
/// <see cref="MeterListener"/>, as dotnet-counters or OpenTelemetry would attach from outside.
/// </summary>
internal sealed class MetricsCollector : IDisposable
{
    private readonly Lock _gate = new();
    private readonly MeterListener _listener = new();
    private readonly List<Instrument> _instruments = [];
    private readonly Dictionary<(Instrument Instrument, string Tags), Accumulator> _values = [];

    public MetricsCollector()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == ProcHexDiagnostics.MeterName)
            {
                lock (_gate)
                {
                    _instruments.Add(instrument);
                }

                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Add(instrument, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Add(instrument, value, tags));
        _listener.Start();
    }

    /// <summary>
    /// Every instrument's values so far, by name then tags (an instrument that measured nothing shows 0): counters
    /// summed, observable levels as they are now.
    /// </summary>
    public IReadOnlyList<MetricValue> Snapshot()
    {
        _listener.RecordObservableInstruments();
        lock (_gate)
        {
            var values = new List<MetricValue>();
            foreach (var instrument in _instruments.DistinctBy(i => i.Name))
            {
                var rows = _values.Where(v => v.Key.Instrument.Name == instrument.Name).ToList();
                if (rows.Count == 0)
                {
                    values.Add(Row(instrument, new Dictionary<string, string>(), new Accumulator()));
                }

                // Several meters named ProcHex (one per container, and the process-wide one) add up.
                foreach (var group in rows.GroupBy(r => r.Key.Tags).OrderBy(g => g.Key, StringComparer.Ordinal))
                {
                    var sum = new Accumulator();
                    foreach (var (_, one) in group)
                    {
                        sum.Merge(one);
                    }

                    values.Add(Row(instrument, group.First().Value.Tags, sum));
                }
            }

            return [.. values.OrderBy(v => v.Name, StringComparer.Ordinal)];
        }
    }

    public void Dispose() => _listener.Dispose();

    private static MetricValue Row(Instrument instrument, IReadOnlyDictionary<string, string> tags, Accumulator sum) =>
        instrument is Histogram<double>
            ? new MetricValue(instrument.Name, instrument.Unit, tags, null, sum.Count, sum.Sum, sum.Count == 0 ? null : sum.Max)
            : new MetricValue(instrument.Name, instrument.Unit, tags, sum.Total, null, null, null);

    private void Add(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var key = string.Join(',', tags.ToArray().Select(t => $"{t.Key}={Convert.ToString(t.Value, CultureInfo.InvariantCulture)}"));
        lock (_gate)
        {
            if (!_values.TryGetValue((instrument, key), out var accumulator))
            {
                accumulator = new Accumulator();
                foreach (var (name, tag) in tags)
                {
                    accumulator.Tags[name] = Convert.ToString(tag, CultureInfo.InvariantCulture) ?? "";
                }

                _values.Add((instrument, key), accumulator);
            }

            // An observable level is reported whole each time: the last report is its value.
            accumulator.Total = instrument.IsObservable ? (long)value : accumulator.Total + (long)value;
            accumulator.Count++;
            accumulator.Sum += value;
            accumulator.Max = Math.Max(accumulator.Max, value);
        }
    }

    private sealed class Accumulator
    {
        public Dictionary<string, string> Tags { get; } = new(StringComparer.Ordinal);

        public long Total { get; set; }

        public long Count { get; set; }

        public double Sum { get; set; }

        public double Max { get; set; }

        public void Merge(Accumulator other)
        {
            Total += other.Total;
            Count += other.Count;
            Sum += other.Sum;
            Max = Math.Max(Max, other.Max);
        }
    }
}
