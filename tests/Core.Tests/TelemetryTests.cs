using System.Collections.Concurrent;
using System.Diagnostics;
using ProcHex.Backends.Fake;
using ProcHex.Scenarios.Telemetry;

namespace ProcHex.Core.Tests;

/// <summary>
/// Issue 21 item 3: the ProcHex meter's instruments and the ProcHex activity source's spans, read the way users read
/// them (a <c>MeterListener</c>, an <see cref="ActivityListener"/>), over the fake backend. Listeners are
/// process-wide and test classes run in parallel: each test measures into a meter of its own factory and keeps only
/// the spans of its own trace.
/// </summary>
public sealed class TelemetryTests : IDisposable
{
    private readonly FakeKernel _kernel = new();
    private readonly FakePrograms _programs;
    private readonly ScopedMeterFactory _meters = new();
    private readonly MeasurementRecorder _measurements;
    private readonly ProcHexMetrics _metrics;

    public TelemetryTests()
    {
        _programs = new FakePrograms().RegisterWith(_kernel);
        _measurements = new MeasurementRecorder(_meters);
        _metrics = new ProcHexMetrics(_meters);
    }

    public void Dispose()
    {
        _measurements.Dispose();
        _meters.Dispose();
    }

    [Fact]
    [Trait("Issue", "21")]
    public void Three_hits_of_a_client_breakpoint_count_three_trap_hits_and_the_exit_is_a_stop()
    {
        DeterministicScheduler.Run(
            async () =>
            {
                await using var session = new ProcHexSession(new FakeTracer(_kernel), metrics: _metrics);
                var handle = await session.CreateAsync(_programs.Loop.Path, [_programs.Loop.Path, "3"]);
                await session.SetBreakpointAsync(handle, "a.out`work", _ => { });
                session.Continue(handle);
                Assert.NotNull(await session.WaitForNotificationAsync(Timeout.InfiniteTimeSpan));
            },
            _kernel,
            seed: 3);

        Assert.Equal(3, _measurements.Observe("prochex.breakpoint.hits", ("prochex.breakpoint.mode", "trap")));
        Assert.Equal(3, _measurements.Observe("prochex.breakpoint.hits"));
        Assert.Equal(1, _measurements.Sum("prochex.stops", ("prochex.stop.reason", "exited")));
        // The internal breakpoints (main, the dynamic linker's events) stop it too: they are no client hits.
        Assert.True(_measurements.Sum("prochex.stops", ("prochex.stop.reason", "breakpoint")) >= 3);
    }

    [Fact]
    [Trait("Issue", "21")]
    public void Victims_are_counted_in_the_state_they_are_in_and_leave_the_count_when_released()
    {
        var (whileIdle, whileHeld) = DeterministicScheduler.Run(
            async () =>
            {
                await using var session = new ProcHexSession(new FakeTracer(_kernel), metrics: _metrics);
                var handle = await session.CreateAsync(_programs.Sleeper.Path, [_programs.Sleeper.Path]);
                var idle = (_measurements.Observe("prochex.victims", ("prochex.victim.state", "idle")), _measurements.Observe("prochex.victims"));
                var readOnly = await session.GrabAsync(_kernel.Spawn(_programs.Sleeper), GrabMode.ReadOnly);
                var held = (_measurements.Observe("prochex.victims", ("prochex.victim.state", "observed")), _measurements.Observe("prochex.victims"));
                await session.ReleaseAsync(handle);
                await session.ReleaseAsync(readOnly);
                return (idle, held);
            },
            _kernel,
            seed: 4);

        Assert.Equal((1, 1), whileIdle);
        Assert.Equal((1, 2), whileHeld);
        Assert.Equal(0, _measurements.Observe("prochex.victims"));
        Assert.All(Enum.GetNames<VictimState>(), state => Assert.Equal(0, _measurements.Observe("prochex.victims", ("prochex.victim.state", ProcHexDiagnostics.Snake(state)))));
    }

    [Fact]
    [Trait("Issue", "21")]
    public void A_notification_nobody_took_yet_is_queued_until_taken()
    {
        var (queued, taken) = DeterministicScheduler.Run(
            async () =>
            {
                await using var session = new ProcHexSession(new FakeTracer(_kernel), metrics: _metrics);
                var handle = await session.CreateAsync(_programs.Loop.Path, [_programs.Loop.Path, "1"]);
                session.Continue(handle);
                // Once the exit is answered only the loop's own continuations are left before its notification.
                await _measurements.Measured("prochex.stops", ("prochex.stop.reason", "exited"));
                while (session.PendingNotifications == 0)
                {
                    await Task.Yield();
                }

                var before = _measurements.Observe("prochex.notifications.queued");
                Assert.True(session.TryTakeNotification(out _));
                return (before, _measurements.Observe("prochex.notifications.queued"));
            },
            _kernel,
            seed: 5);

        Assert.Equal(1, queued);
        Assert.Equal(0, taken);
    }

    [Fact]
    [Trait("Issue", "21")]
    public void A_create_is_one_span_with_its_pid_and_file_and_its_release_another()
    {
        using var spans = new Spans();
        var pid = DeterministicScheduler.Run(
            async () =>
            {
                using var root = spans.StartRoot();
                await using var session = new ProcHexSession(new FakeTracer(_kernel), metrics: _metrics);
                var handle = await session.CreateAsync(_programs.Sleeper.Path, [_programs.Sleeper.Path]);
                await session.ReleaseAsync(handle);
                return handle.Pid;
            },
            _kernel,
            seed: 6);

        var create = Assert.Single(spans.Named("prochex.create"));
        Assert.Equal(pid, create.GetTagItem("process.pid"));
        Assert.Equal(_programs.Sleeper.Path, create.GetTagItem("process.executable.path"));
        Assert.Equal(ActivityStatusCode.Unset, create.Status);
        var release = Assert.Single(spans.Named("prochex.release"));
        Assert.Equal(pid, release.GetTagItem("process.pid"));
        Assert.Equal("kill", release.GetTagItem("prochex.release.mode"));
    }

    [Fact]
    [Trait("Issue", "21")]
    public void A_failed_grab_is_a_span_with_error_status_and_the_exception_type()
    {
        using var spans = new Spans();
        DeterministicScheduler.Run(
            async () =>
            {
                using var root = spans.StartRoot();
                await using var session = new ProcHexSession(new FakeTracer(_kernel), metrics: _metrics);
                await Assert.ThrowsAsync<GrabFailedException>(() => session.GrabAsync(424_242));
            },
            _kernel,
            seed: 7);

        var grab = Assert.Single(spans.Named("prochex.grab"));
        Assert.Equal(ActivityStatusCode.Error, grab.Status);
        Assert.Equal(424_242, grab.GetTagItem("process.pid"));
        Assert.Equal("control", grab.GetTagItem("prochex.grab.mode"));
        Assert.Equal(typeof(GrabFailedException).FullName, grab.GetTagItem("error.type"));
        Assert.Equal("gone", grab.GetTagItem("prochex.error.kind"));
    }

    [Fact]
    [Trait("Issue", "21")]
    public void A_failed_create_is_a_span_with_error_status_and_the_error_kind()
    {
        using var spans = new Spans();
        DeterministicScheduler.Run(
            async () =>
            {
                using var root = spans.StartRoot();
                await using var session = new ProcHexSession(new FakeTracer(_kernel), metrics: _metrics);
                await Assert.ThrowsAsync<CreateFailedException>(() => session.CreateAsync("/no/such/program", ["program"]));
            },
            _kernel,
            seed: 8);

        var create = Assert.Single(spans.Named("prochex.create"));
        Assert.Equal(ActivityStatusCode.Error, create.Status);
        Assert.Equal(typeof(CreateFailedException).FullName, create.GetTagItem("error.type"));
        Assert.Equal("not_found", create.GetTagItem("prochex.error.kind"));
    }

    [Fact]
    [Trait("Issue", "21")]
    public void A_library_list_change_is_a_span_of_its_own_linked_to_the_create()
    {
        using var spans = new Spans();
        DeterministicScheduler.Run(
            async () =>
            {
                using var root = spans.StartRoot();
                await using var session = new ProcHexSession(new FakeTracer(_kernel), metrics: _metrics);
                var handle = await session.CreateAsync(_programs.Dlopen.Path, [_programs.Dlopen.Path, "1"]);
                session.Continue(handle);
                Assert.NotNull(await session.WaitForNotificationAsync(Timeout.InfiniteTimeSpan));
            },
            _kernel,
            seed: 9);

        var create = Assert.Single(spans.Named("prochex.create"));
        var changes = spans.Named("prochex.library_list.change");
        Assert.Contains(changes, c => (string?)c.GetTagItem("prochex.rtld.event") == "dl_activity" && (int?)c.GetTagItem("prochex.libraries.added") == 1);
        Assert.Contains(changes, c => (string?)c.GetTagItem("prochex.rtld.event") == "dl_activity" && (int?)c.GetTagItem("prochex.libraries.removed") == 1);
        Assert.All(changes, c =>
        {
            Assert.Equal(default, c.ParentSpanId);
            Assert.Equal(create.Context, Assert.Single(c.Links).Context);
        });
    }

    /// <summary>The ProcHex spans of one test: those in the trace of its root, or linked to it.</summary>
    private sealed class Spans : IDisposable
    {
        private static readonly ActivitySource TestSource = new("ProcHex.Core.Tests.Telemetry");
        private readonly ConcurrentQueue<Activity> _stopped = new();
        private readonly ActivityListener _listener;
        private ActivityTraceId _trace;

        public Spans()
        {
            // Made before the listener: a source first made inside ShouldListenTo would be missed.
            var test = TestSource;
            _listener = new ActivityListener
            {
                ShouldListenTo = source => source.Name is ProcHexDiagnostics.ActivitySourceName || source == test,
                Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
                ActivityStopped = _stopped.Enqueue,
            };
            ActivitySource.AddActivityListener(_listener);
        }

        public Activity StartRoot()
        {
            var root = TestSource.StartActivity("test", ActivityKind.Internal, parentContext: default)!;
            _trace = root.TraceId;
            return root;
        }

        public IReadOnlyList<Activity> Named(string name) =>
            [.. _stopped.Where(a => a.Source.Name == ProcHexDiagnostics.ActivitySourceName && a.OperationName == name
                && (a.TraceId == _trace || a.Links.Any(l => l.Context.TraceId == _trace)))];

        public void Dispose() => _listener.Dispose();
    }
}
