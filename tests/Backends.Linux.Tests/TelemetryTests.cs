using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using ProcHex.Tests.Support;

namespace ProcHex.Tests;

/// <summary>
/// Issue 21 item 3 on real victims: a session from <c>AddProcHex(b => b.UseLinux())</c> measures into the meter of the
/// container's <see cref="IMeterFactory"/>, its hits and the backend's step-overs (emulated or out of line, as the
/// adapter decided) alike; the ptrace owner thread's queue wait goes to the process-wide meter.
/// </summary>
public sealed class TelemetryTests : LinuxTestBase
{
    private const int Calls = 25;

    [Theory]
    [Trait("Issue", "21")]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Real_hits_are_counted_as_traps_and_their_step_overs_by_the_kind_the_backend_chose(bool emulate)
    {
        using var meters = new ScopedMeterFactory();
        using var measurements = new ScopedMeasurements(meters);
        var services = new ServiceCollection();
        services.AddSingleton<IMeterFactory>(meters);
        services.AddProcHex(b => b.UseLinux(o => o.EmulateStepOver = emulate));
        await using var provider = services.BuildServiceProvider();
        var session = provider.GetRequiredService<ProcHexSession>();
        var path = FixturePrograms.PathOf("loop");

        var handle = await session.CreateAsync(path, [path, Calls.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        TrackPid(handle.Pid);
        var hits = 0;
        await session.SetBreakpointAsync(handle, "a.out`work", _ => hits++);
        session.Continue(handle);
        var note = await session.WaitForNotificationAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(NotificationKind.Exited, note?.Kind);
        Assert.Equal(Calls, hits);
        Assert.Equal(Calls, measurements.Sum("prochex.breakpoint.hits", ("prochex.breakpoint.mode", "trap")));
        Assert.Equal(1, measurements.Sum("prochex.stops", ("prochex.stop.reason", "exited")));
        Assert.True(measurements.Sum("prochex.stops", ("prochex.stop.reason", "breakpoint")) >= Calls);
        // work() opens with an instruction the emulator knows (-O0: endbr64 or push %rbp).
        var (chosen, other) = emulate ? ("emulated", "out_of_line") : ("out_of_line", "emulated");
        Assert.True(measurements.Sum("prochex.step_overs", ("prochex.step_over.kind", chosen)) >= Calls);
        if (!emulate)
        {
            Assert.Equal(0, measurements.Sum("prochex.step_overs", ("prochex.step_over.kind", other)));
        }

        await session.ReleaseAsync(handle);
        Assert.Equal(0, measurements.Observe("prochex.victims"));
    }

    [Fact]
    [Trait("Issue", "21")]
    public async Task A_create_queues_work_for_the_owner_thread_and_its_wait_is_measured()
    {
        using var delays = new ScopedMeasurements(scope: null);
        await using var session = new ProcHexSession(new ProcHex.Backends.Linux.LinuxTracer());
        var path = FixturePrograms.PathOf("loop");

        var handle = await session.CreateAsync(path, [path, "1"]);
        TrackPid(handle.Pid);
        await session.ReleaseAsync(handle);

        // Others may use the process-wide owner meanwhile: they add measurements, never take this create's away.
        Assert.True(delays.Count("prochex.owner.queue_delay") >= 1);
        Assert.True(delays.Min("prochex.owner.queue_delay") >= 0);
    }

    /// <summary>Meters scoped to this factory, so that a listener tells them from everyone else's.</summary>
    private sealed class ScopedMeterFactory : IMeterFactory
    {
        private readonly List<Meter> _meters = [];

        public Meter Create(MeterOptions options)
        {
            var meter = new Meter(options.Name, options.Version, options.Tags, scope: this);
            _meters.Add(meter);
            return meter;
        }

        public void Dispose() => _meters.ForEach(m => m.Dispose());
    }

    /// <summary>The measurements of the ProcHex meters of one scope (null: the process-wide <see cref="ProcHexMetrics.Shared"/>).</summary>
    private sealed class ScopedMeasurements : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly ConcurrentQueue<(string Name, double Value, KeyValuePair<string, object?>[] Tags)> _all = new();
        private readonly Lock _observing = new();
        private List<(string Name, double Value, KeyValuePair<string, object?>[] Tags)>? _observed;

        public ScopedMeasurements(object? scope)
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

        public long Sum(string instrument, (string Key, string Value)? tag = null) =>
            (long)Of(instrument).Where(m => tag is not { } t || m.Tags.Contains(new(t.Key, t.Value))).Sum(m => m.Value);

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
                return (long)now.Where(m => m.Name == instrument && (tag is not { } t || m.Tags.Contains(new(t.Key, t.Value)))).Sum(m => m.Value);
            }
        }

        public int Count(string instrument) => Of(instrument).Count();

        public double Min(string instrument) => Of(instrument).Min(m => m.Value);

        public void Dispose() => _listener.Dispose();

        private void Add(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            if (instrument.IsObservable)
            {
                _observed?.Add((instrument.Name, value, tags.ToArray()));
            }
            else
            {
                _all.Enqueue((instrument.Name, value, tags.ToArray()));
            }
        }

        private IEnumerable<(string Name, double Value, KeyValuePair<string, object?>[] Tags)> Of(string instrument) =>
            _all.Where(m => m.Name == instrument);
    }
}
