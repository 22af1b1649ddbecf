using NSubstitute;
using NSubstitute.ExceptionExtensions;
using ProcHex.Core.Tests.Ports;
using ProcHex.Ports;

namespace ProcHex.Core.Tests;

/// <summary>
/// Issue 18 item 5 in the core: a counter SPEC counts in the victim where the backend places a counter (no trap is
/// planted, hits read the shared counter), and with a trap wherever it cannot, each site saying which and why.
/// </summary>
[Trait("Issue", "18.5")]
public sealed class InVictimCounterTests
{
    private static async Task<(ProcHexSession Session, ProcessHandle Handle, PortScript Script)> Grabbed(int? functionSize = 16)
    {
        var tracer = new TracerScript();
        var script = new PortScript(4242);
        script.Symbols.FunctionSize(PortScript.WorkAddress).Returns(functionSize);
        ITracedProcess process = script.Process;
        tracer.Tracer.GrabAsync(4242, Arg.Any<GrabAccess>(), Arg.Any<CancellationToken>()).Returns(ValueTask.FromResult(process));
        var session = tracer.Session();
        var handle = await session.GrabAsync(4242);
        return (session, handle, script);
    }

    [Fact]
    public async Task A_site_the_backend_places_counts_in_the_victim_without_a_trap()
    {
        var (session, handle, script) = await Grabbed();
        await using var _ = session;
        var shared = new Shared(PortScript.WorkAddress) { Value = 5 };
        script.Process.InstallCounters(Arg.Any<IReadOnlyList<CounterSite>>())
            .Returns(ci => [.. ci.Arg<IReadOnlyList<CounterSite>>().Select(s => new CounterPlacement(s, shared, null))]);

        var counter = await session.SetPendingCounterAsync(handle, "work");

        var site = Assert.Single(counter.Sites);
        Assert.Equal(CountingMode.InVictim, site.Counting);
        Assert.Null(site.Fallback);
        script.Process.Received(1).InstallCounters(Arg.Is<IReadOnlyList<CounterSite>>(s => s.Single() == new CounterSite(PortScript.WorkAddress, 16)));
        Assert.False(handle.Victim.Breakpoints.TryGet(PortScript.WorkAddress, out var none)); // no trap, planted or waiting to be
        Assert.Equal(0, counter.Hits); // a counter handed out with calls in it (another SPEC's) counts from now
        shared.Value = 7;
        Assert.Equal(2, counter.Hits); // read live, without the victim

        await session.RemovePendingBreakpointAsync(counter);

        script.Process.Received(1).RemoveCounters(Arg.Is<IReadOnlyList<ISharedCounter>>(c => c.Single() == shared));
        Assert.Equal(2, counter.Hits); // the calls counted stay counted
        shared.Value = 9;
        Assert.Equal(2, counter.Hits); // and a jump a failed removal left in counts for it no more
    }

    [Fact]
    public async Task Calls_counted_in_the_victim_are_observed_as_in_victim_hits_and_stay_counted_after_removal_and_release()
    {
        using var meters = new ProcHex.Scenarios.Telemetry.ScopedMeterFactory();
        using var measurements = new ProcHex.Scenarios.Telemetry.MeasurementRecorder(meters);
        var tracer = new TracerScript();
        var script = new PortScript(4242);
        script.Symbols.FunctionSize(PortScript.WorkAddress).Returns(16);
        ITracedProcess process = script.Process;
        tracer.Tracer.GrabAsync(4242, Arg.Any<GrabAccess>(), Arg.Any<CancellationToken>()).Returns(ValueTask.FromResult(process));
        var session = new ProcHexSession(tracer.Tracer, metrics: new ProcHexMetrics(meters));
        var handle = await session.GrabAsync(4242);
        var shared = new Shared(PortScript.WorkAddress) { Value = 5 };
        script.Process.InstallCounters(Arg.Any<IReadOnlyList<CounterSite>>())
            .Returns(ci => [.. ci.Arg<IReadOnlyList<CounterSite>>().Select(s => new CounterPlacement(s, shared, null))]);
        var first = shared;
        (string, string) inVictim = ("prochex.breakpoint.mode", "in_victim");

        var counter = await session.SetPendingCounterAsync(handle, "work");
        Assert.Equal(5, measurements.Observe("prochex.breakpoint.hits", inVictim));
        shared.Value = 9;
        Assert.Equal(9, measurements.Observe("prochex.breakpoint.hits", inVictim)); // read from the shared counter when observed
        await session.RemovePendingBreakpointAsync(counter);
        first.Value = 1000; // out of the text: a fake's value, to prove the metric no longer reads it
        Assert.Equal(9, measurements.Observe("prochex.breakpoint.hits", inVictim));

        shared = new Shared(PortScript.WorkAddress) { Value = 3 };
        _ = await session.SetPendingCounterAsync(handle, "work");
        Assert.Equal(12, measurements.Observe("prochex.breakpoint.hits", inVictim));
        await session.ReleaseAsync(handle);
        shared.Value = 2000;
        Assert.Equal(12, measurements.Observe("prochex.breakpoint.hits", inVictim)); // the last values are kept at the release
        Assert.Equal(0, measurements.Observe("prochex.breakpoint.hits", ("prochex.breakpoint.mode", "trap")));
        await session.DisposeAsync();
    }

    /// <summary>
    /// Simulation seed 3344 (with --faults): control lost (a wait failed) while a jump the backend could not take out
    /// went on counting. The SPEC's count stops where control stopped, as a trap's does.
    /// </summary>
    [Fact]
    public async Task A_loss_of_control_freezes_the_count_though_the_jump_counts_on()
    {
        var (session, handle, script) = await Grabbed();
        await using var _ = session;
        var shared = new Shared(PortScript.WorkAddress) { Value = 0 };
        script.Process.InstallCounters(Arg.Any<IReadOnlyList<CounterSite>>())
            .Returns(ci => [.. ci.Arg<IReadOnlyList<CounterSite>>().Select(s => new CounterPlacement(s, shared, null))]);
        var counter = await session.SetPendingCounterAsync(handle, "work");
        session.Continue(handle);
        await script.WaitForWaitsAsync(1);
        shared.Value = 12;

        script.FailWait(new TracerException("pid 4242: WaitForStop: Operation not permitted", TracerErrorKind.PermissionDenied));
        var lost = await session.WaitForNotificationAsync(TimeSpan.FromSeconds(10));
        shared.Value = 20;

        Assert.Equal(NotificationKind.Lost, lost?.Kind);
        Assert.Equal(12, counter.Hits);
    }

    [Fact]
    public async Task A_site_the_backend_refuses_counts_with_a_trap_and_says_why()
    {
        var (session, handle, script) = await Grabbed();
        await using var _ = session;
        script.Process.InstallCounters(Arg.Any<IReadOnlyList<CounterSite>>())
            .Returns(ci => [.. ci.Arg<IReadOnlyList<CounterSite>>().Select(s => CounterPlacement.Refused(s, "0x401100: call rel32 is a call"))]);

        var counter = await session.SetPendingCounterAsync(handle, "work");

        var site = Assert.Single(counter.Sites);
        Assert.Equal(CountingMode.Trap, site.Counting);
        Assert.Equal("0x401100: call rel32 is a call", site.Fallback);
        Assert.True(handle.Victim.Breakpoints.TryGet(PortScript.WorkAddress, out var trap) && trap.Clients.Length == 1);
    }

    [Fact]
    public async Task A_function_of_unknown_size_is_not_offered_to_the_backend()
    {
        var (session, handle, script) = await Grabbed(functionSize: null);
        await using var _ = session;

        var counter = await session.SetPendingCounterAsync(handle, "work");

        Assert.Contains("no sized function symbol", Assert.Single(counter.Sites).Fallback, StringComparison.Ordinal);
        script.Process.DidNotReceive().InstallCounters(Arg.Any<IReadOnlyList<CounterSite>>());
        Assert.True(handle.Victim.Breakpoints.TryGet(PortScript.WorkAddress, out var trap) && trap.Clients.Length == 1);
    }

    [Fact]
    public async Task Trap_counting_asked_for_plants_a_trap_and_asks_nothing_of_the_backend()
    {
        var (session, handle, script) = await Grabbed();
        await using var _ = session;

        var counter = await session.SetPendingCounterAsync(handle, "work", CountingMode.Trap);

        var site = Assert.Single(counter.Sites);
        Assert.Equal(CountingMode.Trap, site.Counting);
        Assert.Equal("counting with traps was asked for", site.Fallback);
        script.Process.DidNotReceive().InstallCounters(Arg.Any<IReadOnlyList<CounterSite>>());
    }

    [Fact]
    public async Task A_backend_failure_falls_back_to_a_trap_with_its_message()
    {
        var (session, handle, script) = await Grabbed();
        await using var _ = session;
        script.Process.InstallCounters(Arg.Any<IReadOnlyList<CounterSite>>()).Throws(new TracerException("pid 4242: no such process", TracerErrorKind.Gone));

        var counter = await session.SetPendingCounterAsync(handle, "work");

        Assert.Equal("pid 4242: no such process", Assert.Single(counter.Sites).Fallback);
        Assert.True(handle.Victim.Breakpoints.TryGet(PortScript.WorkAddress, out var trap) && trap.Clients.Length == 1);
    }

    [Fact]
    public async Task A_breakpoint_SPEC_says_nothing_of_counting()
    {
        var (session, handle, script) = await Grabbed();
        await using var _ = session;

        var breakpoint = await session.SetPendingBreakpointAsync(handle, "work", static _ => { });

        Assert.Null(Assert.Single(breakpoint.Sites).Counting);
        script.Process.DidNotReceive().InstallCounters(Arg.Any<IReadOnlyList<CounterSite>>());
    }

    [Fact]
    [Trait("Issue", "20.1")]
    public async Task A_wildcard_counter_keeps_hits_per_site_one_per_function_named_by_its_best_alias()
    {
        const ulong Other = PortScript.WorkAddress + 0x100;
        var (session, handle, script) = await Grabbed();
        await using var _ = session;
        script.Symbols.FunctionSize(Other).Returns(16);
        script.Symbols.FunctionsOf(Arg.Any<string>()).Returns([
            new FunctionSymbol("__work", PortScript.WorkAddress),
            new FunctionSymbol("work", PortScript.WorkAddress),
            new FunctionSymbol("_work", PortScript.WorkAddress),
            new FunctionSymbol("wrk2", Other),
            new FunctionSymbol("main", PortScript.MainAddress),
        ]);
        var shared = new Shared(PortScript.WorkAddress) { Value = 5 };
        script.Process.InstallCounters(Arg.Any<IReadOnlyList<CounterSite>>()).Returns(ci =>
            [.. ci.Arg<IReadOnlyList<CounterSite>>().Select(s => s.Entry == PortScript.WorkAddress
                ? new CounterPlacement(s, shared, null)
                : CounterPlacement.Refused(s, "0x401200: call rel32 is a call"))]);

        var changes = new List<PendingBreakpointChange>();
        session.PendingBreakpointChanged = changes.Add;
        var counter = await session.SetPendingCounterAsync(handle, "*[wk]*");
        session.Continue(handle);
        await script.WaitForWaitsAsync(1);
        script.HitBreakpoint(Other);
        script.HitBreakpoint(Other);
        await script.WaitForWaitsAsync(3);
        shared.Value = 7;

        Assert.Equal(["work", "wrk2"], counter.Sites.Select(s => s.Symbol));
        Assert.Equal([CountingMode.InVictim, CountingMode.Trap], counter.Sites.Select(s => s.Counting));
        var bySite = counter.HitsBySite;
        Assert.Equal(counter.EverPlanted, bySite.Select(s => s.Site));
        Assert.Equal([2L, 2L], bySite.Select(s => s.Hits)); // the shared counter's 5 calls came before this SPEC counted
        Assert.Equal(4, counter.Hits);
        var planted = Assert.Single(changes);
        Assert.Equal(2, planted.Sites.Count);
        Assert.NotNull(planted.PlantingTime);
    }

    [Theory]
    [InlineData("malloc", "__libc_malloc", true)]
    [InlineData("__malloc", "__libc_malloc", true)]
    [InlineData("_IO_puts", "puts", false)]
    [InlineData("memcpy", "memmove", true)]
    [InlineData("memmove", "memcpy", false)]
    public void The_best_alias_has_fewer_leading_underscores_then_is_shorter_then_first_in_order(string candidate, string current, bool better) =>
        Assert.Equal(better, ProcHex.Breakpoints.PendingBreakpointSet.BetterAlias(candidate, current));

    private sealed class Shared(ulong entry) : ISharedCounter
    {
        public ulong Entry { get; } = entry;

        public ulong Value { get; set; }
    }
}
