using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using ProcHex.Scenarios.Telemetry;
using ProcHex.Backends.Linux.Tests.Support;

namespace ProcHex.Backends.Linux.Tests;

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
        using var measurements = new MeasurementRecorder(meters);
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
        Assert.Equal(Calls, measurements.Observe("prochex.breakpoint.hits", ("prochex.breakpoint.mode", "trap")));
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
        using var delays = new MeasurementRecorder(scope: null);
        await using var session = new ProcHexSession(new ProcHex.Backends.Linux.LinuxTracer());
        var path = FixturePrograms.PathOf("loop");

        var handle = await session.CreateAsync(path, [path, "1"]);
        TrackPid(handle.Pid);
        await session.ReleaseAsync(handle);

        // Others may use the process-wide owner meanwhile: they add measurements, never take this create's away.
        Assert.True(delays.Count("prochex.owner.queue_delay") >= 1);
        Assert.True(delays.Min("prochex.owner.queue_delay") >= 0);
    }
}
