using System.Diagnostics;
using System.Globalization;
using ProcHex.Arch.X64;
using ProcHex.Backends.Linux.InVictim;
using ProcHex.Backends.Linux.Tests.Support;
using ProcHex.PortContract;
using ProcHex.Ports;

namespace ProcHex.Backends.Linux.Tests;

/// <summary>
/// In-victim counters on real victims (issue 18 items 1, 3, 4): the counters fixture calls functions of five entry
/// shapes (and one that must be refused) from threads released by a start gate, and checks every result itself.
/// </summary>
[Trait("Backend", "Linux")]
public sealed class InVictimCounterTests : LinuxTestBase
{
    private const int Cycles = 1_000;

    private static readonly string[] Counted = ["shape_endbr", "shape_pushrbp", "shape_movstack", "shape_subrsp", "shape_riprel"];

    [Theory]
    [Trait("Issue", "18.3")]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(8)]
    public async Task Every_call_is_counted_exactly_on_every_shape_without_a_single_stop(int threads)
    {
        const int N = 20_000;
        var p = await Create("counters", threads.ToString(CultureInfo.InvariantCulture), N.ToString(CultureInfo.InvariantCulture));

        var placements = p.InstallCounters(Sites(p));
        var driver = new PortDriver(p);
        var end = await driver.RunToEnd(120);

        Assert.Equal(ExitStatus.FromCode(0), end.Exit);
        Assert.DoesNotContain(StopReason.Breakpoint, driver.Reasons);
        foreach (var placement in placements.Take(Counted.Length))
        {
            Assert.True(placement.Counter is not null, placement.Refusal);
            Assert.Equal((ulong)(threads * N), placement.Counter.Value); // read after the victim is gone

            // each thread calls from one stack depth, so all its calls count in one slot (chosen by its stack)
            var slots = ((SharedCounter)placement.Counter).SlotValues().Where(v => v > 0).ToList();
            Assert.All(slots, slot => Assert.Equal(0UL, slot % N));
            Assert.InRange(slots.Count, 1, threads);
        }
    }

    [Fact]
    [Trait("Issue", "18.2")]
    public async Task A_call_in_the_displaced_bytes_is_refused_with_why_and_the_others_still_count()
    {
        var p = await Create("counters", "2", "1000");

        var placements = p.InstallCounters(Sites(p));
        var end = await new PortDriver(p).RunToEnd();

        Assert.Equal(ExitStatus.FromCode(0), end.Exit);
        var call = placements[^1];
        Assert.Null(call.Counter);
        Assert.Contains("call", call.Refusal, StringComparison.Ordinal);
        Assert.All(placements.SkipLast(1), placement => Assert.Equal(2000UL, placement.Counter!.Value));
    }

    [Fact]
    [Trait("Issue", "18.3")]
    public async Task Install_and_removal_with_four_threads_and_a_signal_handler_calling_leave_the_text_as_it_was()
    {
        var p = await Create("counters", "4", "0", "forever");
        var sites = Sites(p).Take(Counted.Length).ToList();
        var before = sites.Select(s => Observe.Memory(p.Pid, s.Entry, 16)).ToList();
        p.Resume();
        var totals = new ulong[sites.Count];
        var waited = 0;
        for (var cycle = 0; cycle < Cycles; cycle++)
        {
            await Stop(p);
            var placements = p.InstallCounters(sites);
            foreach (var refused in placements.Where(c => c.Counter is null))
            {
                // The one refusal allowed: a handler interrupted a call inside the bytes the jump would replace.
                Assert.Contains("signal handler", refused.Refusal, StringComparison.Ordinal);
                waited++;
            }

            p.Resume();
            Thread.SpinWait(20_000);
            await Stop(p);
            var counters = placements.Select(c => c.Counter).OfType<ISharedCounter>().ToList();
            p.RemoveCounters(counters);
            for (var i = 0; i < sites.Count; i++)
            {
                Assert.Equal(before[i], Observe.Memory(p.Pid, sites[i].Entry, 16));
                totals[i] += placements[i].Counter?.Value ?? 0;
            }

            p.Resume();
        }

        Assert.True(waited < Cycles / 10, $"{waited} of {Cycles * sites.Count} installs waited for a signal handler");
        await Stop(p); // alive: a wrong result would have ended it with status 3
        Assert.Equal('t', Observe.State(p.Pid));
        Assert.All(totals, total => Assert.True(total > 0));
        p.Release(ReleaseMode.Kill);
    }

    [Fact]
    [Trait("Issue", "18.4")]
    public async Task A_fork_child_gets_the_original_text_and_runs_to_its_end_uncounted()
    {
        var p = await Create("counters", "2", "1000", "fork");

        var placements = p.InstallCounters(Sites(p));
        var end = await new PortDriver(p).RunToEnd();

        Assert.Equal(ExitStatus.FromCode(0), end.Exit); // the child exited 7: our jumps were out of its text
        Assert.All(placements.SkipLast(1), placement => Assert.Equal(2000UL, placement.Counter!.Value));
    }

    [Fact]
    [Trait("Issue", "18.4")]
    public async Task A_vfork_child_shares_the_counters_and_its_calls_count_for_the_parent()
    {
        var p = await Create("counters", "2", "1000", "vfork");

        var placements = p.InstallCounters(Sites(p));
        var end = await new PortDriver(p).RunToEnd();

        Assert.Equal(ExitStatus.FromCode(0), end.Exit);
        Assert.All(placements.SkipLast(1), placement => Assert.Equal(3000UL, placement.Counter!.Value));
    }

    [Fact]
    [Trait("Issue", "18.3")]
    [Trait("Spec", "S9")]
    public async Task Release_takes_every_jump_out_and_the_victim_runs_on_with_its_own_text()
    {
        var p = await Create("counters", "4", "0", "forever");
        var sites = Sites(p).Take(Counted.Length).ToList();
        var before = sites.Select(s => Observe.Memory(p.Pid, s.Entry, 16)).ToList();
        var counters = p.InstallCounters(sites).Select(c => c.Counter!).ToList();
        p.Resume();
        await Observe.Eventually(() => counters.All(c => c.Value > 1000));
        await Stop(p);

        p.Release(ReleaseMode.Run);

        var pid = p.Pid;
        for (var i = 0; i < sites.Count; i++)
        {
            Assert.Equal(before[i], Observe.Memory(pid, sites[i].Entry, 16));
        }

        var counted = counters.Select(c => c.Value).ToList();
        Thread.Sleep(50);
        Assert.Equal(counted, counters.Select(c => c.Value)); // nothing counts once the jumps are out
        Assert.Contains(Observe.State(pid), new char?[] { 'R', 'S' }); // running on, untraced (the cleanup kills it)
        Assert.Equal(0, Observe.TracerPid(pid));
    }

    [Fact]
    [Trait("Issue", "18.3")]
    public async Task A_breakpoint_and_a_counter_never_share_bytes()
    {
        var p = await Create("counters", "1", "10");
        var sites = Sites(p);
        var endbr = sites[0];
        var pushrbp = sites[1];

        var counter = p.InstallCounters([endbr])[0].Counter!;
        var inJump = Assert.Throws<TracerException>(() => p.PlantBreakpoint(endbr.Entry + 4)); // past endbr64: the jump
        Assert.Equal(TracerErrorKind.Busy, inJump.Kind);
        var trap = p.PlantBreakpoint(pushrbp.Entry + 1);
        var refused = p.InstallCounters([pushrbp])[0];
        Assert.Null(refused.Counter);
        Assert.Contains("breakpoint", refused.Refusal, StringComparison.Ordinal);

        p.RemoveBreakpoint(trap);
        var end = await new PortDriver(p).RunToEnd();
        Assert.Equal(ExitStatus.FromCode(0), end.Exit);
        Assert.Equal(10UL, counter.Value);
    }

    [Fact]
    [Trait("Issue", "18.3")]
    public async Task Counters_go_in_and_out_while_the_victim_runs_and_it_runs_on()
    {
        var stopped = new List<(string? Change, double Seconds)>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "prochex.counters.stopped")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>((_, seconds, tags, _) => stopped.Add(((string?)tags[0].Value, seconds)));
        listener.Start();
        var p = await Create("counters", "4", "0", "forever");
        var sites = Sites(p).Take(Counted.Length).ToList();
        var before = sites.Select(s => Observe.Memory(p.Pid, s.Entry, 16)).ToList();
        p.Resume();

        var counters = p.InstallCounters(sites).Select(c => c.Counter ?? throw new Xunit.Sdk.XunitException(c.Refusal)).ToList();
        Assert.True(await Observe.Eventually(() => counters.All(c => c.Value > 10_000)), "the victim stopped counting: it does not run");
        p.RemoveCounters(counters);

        Assert.Empty(await Observe.StuckThreads(p.Pid)); // the removal's stop ended for every thread
        for (var i = 0; i < sites.Count; i++)
        {
            Assert.Equal(before[i], Observe.Memory(p.Pid, sites[i].Entry, 16));
        }

        await Stop(p); // the core's wait still works: nothing was reported in between
        p.Release(ReleaseMode.Kill);
        // prochex.counters.stopped, once per batch; the first install near these functions maps their arena in a stop of its own
        Assert.Equal(["arena", "install", "remove"], stopped.Select(m => m.Change));
        Assert.All(stopped, m => Assert.True(m.Seconds > 0));
    }

    /// <summary>
    /// Through the session (issue 18 item 5): a counter SPEC set while the victim runs goes in at once, in the victim,
    /// counts while it runs on, and comes out with the SPEC; the victim never stopped for the core.
    /// </summary>
    [Fact]
    [Trait("Issue", "18.5")]
    public async Task A_counter_set_through_the_session_while_the_victim_runs_counts_in_the_victim()
    {
        await using var session = new ProcHexSession(Tracer, new ProcHexOptions(), TestLog.Factory);
        var program = FixturePrograms.PathOf("counters");
        var handle = await session.CreateAsync(program, [program, "4", "0", "forever"], new CreateOptions(), Timeout());
        TrackPid(handle.Pid);
        session.Continue(handle);

        var counter = await session.SetPendingCounterAsync(handle, "shape_pushrbp");

        Assert.Equal(CountingMode.InVictim, Assert.Single(counter.Sites).Counting);
        Assert.True(await Observe.Eventually(() => counter.Hits > 100_000), $"{counter.Hits} hits");
        await session.RemovePendingBreakpointAsync(counter);
        Assert.Empty(await Observe.StuckThreads(handle.Pid));
        var after = counter.Hits;
        Assert.True(after >= 100_000);
        Assert.Null(session.TryTakeNotification(out var note) ? note : null); // nothing happened to it meanwhile
        await session.ReleaseAsync(handle);
        Assert.Equal(after, counter.Hits); // the counts outlive the victim
    }

    /// <summary>
    /// Thread churn: two threads create short-lived threads without pause, each calling work() once, while a counter on
    /// work goes in and out with the victim running. Threads born during a transaction are stopped by it too (they
    /// arrive traced and stopped), so none runs through half-written text; the text is the file's after each removal.
    /// </summary>
    [Fact]
    [Trait("Issue", "18.4")]
    public async Task Counters_go_in_and_out_while_threads_are_born_and_die()
    {
        var p = await Create("churn");
        var site = new CounterSite(Observe.LoadBias(p.Pid, FixturePrograms.PathOf("churn")) + FixturePrograms.Symbol("churn", "work"), SymbolSize("churn", "work"));
        var before = Observe.Memory(p.Pid, site.Entry, 16);
        var calls = Observe.LoadBias(p.Pid, FixturePrograms.PathOf("churn")) + FixturePrograms.Symbol("churn", "calls");
        p.Resume();
        Assert.True(await Observe.Eventually(() => Observe.ReadLong(p.Pid, calls) > 100), "the threads never ran");
        ulong counted = 0;
        for (var cycle = 0; cycle < 100; cycle++)
        {
            var counter = p.InstallCounters([site])[0].Counter ?? throw new Xunit.Sdk.XunitException("refused");
            var start = Observe.ReadLong(p.Pid, calls);
            Assert.True(await Observe.Eventually(() => Observe.ReadLong(p.Pid, calls) > start + 5), "no thread ran while the counter was in");
            p.RemoveCounters([counter]);
            Assert.Equal(before, Observe.Memory(p.Pid, site.Entry, 16));
            counted += counter.Value;
        }

        Assert.True(counted > 0, "nothing counted: the threads never ran");
        await Stop(p); // alive, and the core's wait still answers
        p.Release(ReleaseMode.Kill);
    }

    /// <summary>
    /// The hazard no PC move can fix: a signal interrupted a call inside the bytes the jump would replace, and its
    /// handler will return there with sigreturn. Here shape_fault faults on its second instruction (entry + 1) and its
    /// handler waits; a counter installed meanwhile would send the return into the middle of the jump (the flaky SIGSEGV
    /// and wrong results seen while writing the cycles test above). The site is refused; once the handler returned,
    /// it takes the counter.
    /// </summary>
    [Fact]
    [Trait("Issue", "18.3")]
    public async Task A_site_a_signal_handler_will_return_into_is_refused_until_it_returned()
    {
        var p = await Create("counters", "1", "0", "handler");
        var bias = Observe.LoadBias(p.Pid, FixturePrograms.PathOf("counters"));
        var fault = new CounterSite(bias + FixturePrograms.Symbol("counters", "shape_fault"), SymbolSize("counters", "shape_fault"));
        var inHandler = bias + FixturePrograms.Symbol("counters", "in_handler");
        p.Resume();
        Assert.True(await Observe.Eventually(() => Observe.ReadLong(p.Pid, inHandler) != 0), "the handler never ran");
        await Stop(p);

        var refused = p.InstallCounters([fault])[0];

        Assert.Null(refused.Counter);
        Assert.Contains($"0x{fault.Entry + 1:x}", refused.Refusal, StringComparison.Ordinal);
        Assert.Contains("signal handler", refused.Refusal, StringComparison.Ordinal);
        p.WriteMemory(bias + FixturePrograms.Symbol("counters", "go"), [1, 0, 0, 0]);
        var end = await new PortDriver(p).RunToEnd();
        Assert.Equal(ExitStatus.FromCode(0), end.Exit); // the handler returned into shape_fault's own text: 42
    }

    /// <summary>
    /// Install with a thread stopped at each instruction of the bytes the jump replaces (after the first): it moves to
    /// the same instruction of the copy in the trampoline (after the increment: its call entered uncounted), and the
    /// call completes with its result right (the fixture checks it). One victim per position, 3 calls each.
    /// </summary>
    [Theory]
    [Trait("Issue", "18.3")]
    [InlineData("shape_endbr")]
    [InlineData("shape_pushrbp")]
    [InlineData("shape_subrsp")]
    public async Task A_thread_stopped_inside_the_displaced_bytes_is_moved_into_the_copy_and_its_call_completes(string shape)
    {
        // shape_movstack and shape_riprel displace one instruction: nothing is inside it to stop at.
        var offsets = await DisplacedOffsets(shape);
        Assert.NotEmpty(offsets);
        foreach (var offset in offsets)
        {
            var p = await Create("counters", "1", "3");
            var site = Sites(p)[Array.IndexOf(Counted, shape)];
            var patch = site.Entry + (shape == "shape_endbr" ? 4UL : 0) + (ulong)offset;
            var trap = p.PlantBreakpoint(patch);
            p.Resume();
            var hit = await Next(p);
            Assert.Equal((StopReason.Breakpoint, patch), (hit.Reason, hit.ProgramCounter));
            p.RemoveBreakpoint(trap);

            var counter = (SharedCounter)p.InstallCounters([site])[0].Counter!;

            Assert.Equal(counter.Trampoline.IntoTrampoline(patch), p.ReadRegisters(hit.ThreadId).Rip);
            Assert.True(p.ReadRegisters(hit.ThreadId).Rip > counter.Trampoline.Address + 8, $"0x{p.ReadRegisters(hit.ThreadId).Rip:x}");
            var end = await new PortDriver(p).RunToEnd();
            Assert.Equal(ExitStatus.FromCode(0), end.Exit);
            Assert.Equal(2UL, counter.Value); // the call caught inside went on uncounted
        }
    }

    /// <summary>
    /// Removal with a thread stopped at each instruction of the trampoline: before the increment it goes back to the
    /// entry, at copied instruction i to displaced instruction i, at the jump back past the displaced bytes; its call
    /// completes with its result right, and the counter kept what was counted.
    /// </summary>
    [Theory]
    [Trait("Issue", "18.3")]
    [InlineData("shape_endbr")]
    [InlineData("shape_pushrbp")]
    [InlineData("shape_movstack")]
    [InlineData("shape_subrsp")]
    [InlineData("shape_riprel")]
    public async Task A_thread_stopped_anywhere_in_the_trampoline_is_moved_back_to_the_text_and_its_call_completes(string shape)
    {
        for (var position = 0; ; position++)
        {
            var p = await Create("counters", "1", "3");
            var site = Sites(p)[Array.IndexOf(Counted, shape)];
            var counter = (SharedCounter)p.InstallCounters([site])[0].Counter!;
            var trampoline = counter.Trampoline;
            ulong[] starts =
            [
                .. CounterTrampoline.HeadInstructions.Select(offset => trampoline.Address + (ulong)offset),
                .. trampoline.Site.Instructions.Select(i => trampoline.Address + CounterTrampoline.HeadLength + (ulong)i.Relocated!.Value),
                trampoline.JumpBackAddress,
            ];
            if (position == starts.Length)
            {
                p.Release(ReleaseMode.Kill);
                break;
            }

            var at = starts[position];
            var trap = p.PlantBreakpoint(at);
            p.Resume();
            var hit = await Next(p);
            Assert.Equal((StopReason.Breakpoint, at), (hit.Reason, hit.ProgramCounter));
            p.RemoveBreakpoint(trap);
            var exit = trampoline.OutOfTrampoline(at)!.Value;
            var savedRax = new byte[8];
            Assert.Equal(8, p.ReadMemory(p.ReadRegisters(hit.ThreadId).Rsp - 8, savedRax));

            p.RemoveCounters([counter]);

            Assert.Equal(exit.Pc, p.ReadRegisters(hit.ThreadId).Rip);
            if (exit.ReloadRax)
            {
                Assert.Equal(BitConverter.ToUInt64(savedRax), p.ReadRegisters(hit.ThreadId).Rax); // the head's scratch register, given back
            }

            var end = await new PortDriver(p).RunToEnd();
            Assert.Equal(ExitStatus.FromCode(0), end.Exit);
            var counted = at >= trampoline.Address + CounterTrampoline.CountedFrom;
            Assert.Equal(counted ? 1UL : 0UL, counter.Value); // counted once the increment ran
        }
    }

    /// <summary>The offsets, from the patch address, of the displaced instructions after the first (from a throwaway victim).</summary>
    private async Task<int[]> DisplacedOffsets(string shape)
    {
        var p = await Create("counters", "1", "0");
        var counter = (SharedCounter)p.InstallCounters([Sites(p)[Array.IndexOf(Counted, shape)]])[0].Counter!;
        p.Release(ReleaseMode.Kill);
        return [.. counter.Trampoline.Site.Instructions.Select(i => i.Original).Where(o => o > 0)];
    }

    /// <summary>The five counted shapes, then shape_call, at their addresses in <paramref name="p"/> with their sizes.</summary>
    private static List<CounterSite> Sites(ITracedProcess p)
    {
        var bias = Observe.LoadBias(p.Pid, FixturePrograms.PathOf("counters"));
        return [.. Counted.Append("shape_call").Select(name => new CounterSite(bias + FixturePrograms.Symbol("counters", name), SymbolSize("counters", name)))];
    }

    private static int SymbolSize(string program, string name)
    {
        var info = new ProcessStartInfo("nm", ["-S", FixturePrograms.PathOf(program)]) { RedirectStandardOutput = true };
        using var nm = Process.Start(info)!;
        foreach (var line in nm.StandardOutput.ReadToEnd().Split('\n'))
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 4 && parts[3] == name)
            {
                return int.Parse(parts[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidOperationException($"no size for {name}");
    }

    private static async Task Stop(ITracedProcess p)
    {
        p.RequestStop();
        var stop = await Next(p);
        Assert.True(stop.Kind == StopKind.Stopped, $"the victim did not stop: {stop}");
    }
}
