using ProcHex.Ports;

namespace ProcHex.Backends.Fake.Tests;

/// <summary>Issue 18 item 5 through the session: counters over the fake, their fallbacks, and faults at the new port calls.</summary>
public class InVictimCounterSessionTests
{
    private readonly TestKit _kit = new();

    [Fact]
    [Trait("Issue", "18.5")]
    public void Issue18_a_counter_counts_every_call_in_the_victim_with_no_stop_and_across_an_exec()
    {
        var (counter, exit) = RunCounted(_kit.Programs.Exec, "work", CountingMode.InVictim, "3");

        Assert.Equal(ExitStatus.FromCode(0), exit);
        Assert.Equal(4, counter.Hits);
        Assert.Equal(2, counter.EverPlanted.Count);
        Assert.All(counter.EverPlanted, site => Assert.Equal((CountingMode.InVictim, (string?)null), (site.Counting, site.Fallback)));
        Assert.DoesNotContain(_kit.Kernel.Log, line => line.Contains($"stop breakpoint 0x{_kit.Programs.Loop.AddressOf("work"):x}", StringComparison.Ordinal));
    }

    [Fact]
    [Trait("Issue", "18.5")]
    public void Issue18_a_refused_site_falls_back_to_a_trap_and_still_counts_exactly()
    {
        var image = new FakeImageBuilder("/bin/unpatchable").Function("main").Function("hit").Unpatchable("hit")
            .Program(Steps.Loop(4, Steps.Call("hit")), Steps.Exit(0)).Build();
        _kit.Kernel.Register(image);

        var (counter, _) = RunCounted(image, "hit", CountingMode.InVictim);

        var site = Assert.Single(counter.EverPlanted);
        Assert.Equal(CountingMode.Trap, site.Counting);
        Assert.Equal($"0x{image.AddressOf("hit"):x}: a branch of the function lands inside the 5 bytes the jump would replace", site.Fallback);
        Assert.Equal(4, counter.Hits);
        Assert.Equal(4, _kit.Kernel.Log.Count(line => line.Contains($"stop breakpoint 0x{site.Address:x}", StringComparison.Ordinal)));
    }

    [Fact]
    [Trait("Issue", "18.5")]
    public void Issue18_trap_counting_asked_for_never_calls_the_backend()
    {
        var (counter, _) = RunCounted(_kit.Programs.Loop, "work", CountingMode.Trap, "3");

        Assert.Equal((CountingMode.Trap, "counting with traps was asked for"), (counter.EverPlanted[0].Counting, counter.EverPlanted[0].Fallback));
        Assert.Equal(3, counter.Hits);
        Assert.Equal(0, _kit.Kernel.Faults.Calls(FakeOperation.InstallCounters));
    }

    [Fact]
    [Trait("Issue", "18.5")]
    public void Issue18_a_fault_at_InstallCounters_falls_back_to_a_trap_that_still_counts_exactly()
    {
        _kit.Kernel.Faults = new FaultPlan().FailAt(FakeOperation.InstallCounters, 1, Errno.EIO);

        var (counter, exit) = RunCounted(_kit.Programs.Loop, "work", CountingMode.InVictim, "5");

        var site = Assert.Single(counter.EverPlanted);
        Assert.Equal(CountingMode.Trap, site.Counting);
        Assert.Equal("pid 100: InstallCounters: Input/output error (injected)", site.Fallback);
        Assert.Equal(5, counter.Hits);
        Assert.Equal(ExitStatus.FromCode(0), exit);
        Assert.Equal(1, _kit.Kernel.Faults.Calls(FakeOperation.InstallCounters));
    }

    [Fact]
    [Trait("Issue", "18.5")]
    public void Issue18_a_fault_at_RemoveCounters_is_logged_the_counter_is_removed_with_its_hits_frozen_and_release_cleans_the_text()
    {
        _kit.Kernel.Faults = new FaultPlan().FailAt(FakeOperation.RemoveCounters, 1, Errno.EIO);
        var pid = _kit.Kernel.Spawn(_kit.Programs.Sleeper);

        var result = DeterministicScheduler.Run(
            async () =>
            {
                await using var session = new ProcHexSession(_kit.Tracer);
                var handle = await session.GrabAsync(pid);
                var counter = await session.SetPendingCounterAsync(handle, "work");
                var work = counter.Sites[0].Address;
                await session.RemovePendingBreakpointAsync(counter);
                var jumpsAfterRemoval = _kit.Kernel.CounterEntries(pid);
                session.Continue(handle);
                var callsBefore = _kit.Kernel.CallsIn(pid, work);
                await _kit.Kernel.WaitUntilAsync(k => k.CallsIn(pid, work) >= callsBefore + 5);
                var callsWhileRemoved = _kit.Kernel.CallsIn(pid, work) - callsBefore;
                await session.ReleaseAsync(handle);
                return (counter, work, jumpsAfterRemoval, callsWhileRemoved);
            },
            _kit.Kernel,
            seed: 5);

        Assert.Equal(PendingBreakpointState.Removed, result.counter.State);
        Assert.Empty(result.counter.Sites);
        Assert.Equal([result.work], result.jumpsAfterRemoval);
        Assert.True(result.callsWhileRemoved > 0);
        Assert.Equal(0, result.counter.Hits);
        Assert.True(_kit.Kernel.TextIsOriginal(pid));
        Assert.Empty(_kit.Kernel.CounterEntries(pid));
    }

    [Fact]
    [Trait("Issue", "18.5")]
    public void Issue18_release_through_the_session_takes_the_jumps_out_and_the_hits_stay()
    {
        var pid = _kit.Kernel.Spawn(_kit.Programs.Sleeper);

        var counter = DeterministicScheduler.Run(
            async () =>
            {
                await using var session = new ProcHexSession(_kit.Tracer);
                var handle = await session.GrabAsync(pid);
                var counter = await session.SetPendingCounterAsync(handle, "work");
                session.Continue(handle);
                await _kit.Kernel.WaitUntilAsync(k => k.CallsIn(pid, counter.Sites[0].Address) >= 5);
                await session.ReleaseAsync(handle);
                return counter;
            },
            _kit.Kernel,
            seed: 6);
        var atRelease = counter.Hits;
        _kit.Kernel.RunUntilQuiet(30);

        Assert.True(atRelease > 0);
        Assert.Equal(atRelease, counter.Hits);
        Assert.True(_kit.Kernel.TextIsOriginal(pid));
        Assert.False(_kit.Kernel.Observe(pid).Traced);
    }

    [Fact]
    [Trait("Issue", "18.5")]
    public void Issue18_two_specs_on_one_function_share_its_counter_each_counting_only_its_own_time_and_the_jump_stays_for_the_other()
    {
        var pid = _kit.Kernel.Spawn(_kit.Programs.Sleeper);
        var work = _kit.Programs.Sleeper.AddressOf("work");

        var result = DeterministicScheduler.Run(
            async () =>
            {
                await using var session = new ProcHexSession(_kit.Tracer);
                var handle = await session.GrabAsync(pid);
                var first = await session.SetPendingCounterAsync(handle, "work");
                session.Continue(handle);
                await _kit.Kernel.WaitUntilAsync(k => k.CallsIn(pid, work) >= 10);
                var second = await session.SetPendingCounterAsync(handle, "a.out`work");
                var atSecond = (Calls: _kit.Kernel.CallsIn(pid, work), Hits: first.Hits);
                await _kit.Kernel.WaitUntilAsync(k => k.CallsIn(pid, work) >= atSecond.Calls + 10);
                await session.RemovePendingBreakpointAsync(first);
                var atRemoval = (Calls: _kit.Kernel.CallsIn(pid, work), Jumps: _kit.Kernel.CounterEntries(pid));
                await _kit.Kernel.WaitUntilAsync(k => k.CallsIn(pid, work) >= atRemoval.Calls + 10);
                await session.RemovePendingBreakpointAsync(second);
                var atEnd = (Calls: _kit.Kernel.CallsIn(pid, work), Clean: _kit.Kernel.CounterEntries(pid).Count == 0 && _kit.Kernel.TextDifferences(pid).All(d => d < work || d >= work + FakeKernel.CounterJumpLength));
                await session.ReleaseAsync(handle);
                return (first, second, atSecond, atRemoval, atEnd);
            },
            _kit.Kernel,
            seed: 7);

        Assert.Equal(result.atSecond.Calls, result.atSecond.Hits);
        Assert.Equal(result.atRemoval.Calls, result.first.Hits);
        Assert.Equal(result.atEnd.Calls - result.atSecond.Calls, result.second.Hits);
        Assert.Equal([work], result.atRemoval.Jumps);
        Assert.True(result.atEnd.Clean);
        Assert.Equal([CountingMode.InVictim, CountingMode.InVictim], [result.first.EverPlanted[0].Counting, result.second.EverPlanted[0].Counting]);
    }

    /// <summary>Creates <paramref name="image"/>, sets a counter on <paramref name="spec"/> at the rendezvous, runs it to its exit.</summary>
    private (PendingBreakpoint Counter, ExitStatus? Exit) RunCounted(FakeImage image, string spec, CountingMode preferred, params string[] arguments) =>
        DeterministicScheduler.Run(
            async () =>
            {
                await using var session = new ProcHexSession(_kit.Tracer);
                var handle = await session.CreateAsync(image.Path, [image.Path, .. arguments]);
                var counter = await session.SetPendingCounterAsync(handle, spec, preferred);
                session.Continue(handle);
                while (await session.WaitForNotificationAsync(Timeout.InfiniteTimeSpan) is { } notification)
                {
                    if (notification.Kind != NotificationKind.Error)
                    {
                        return (counter, notification.Exit);
                    }
                }

                return (counter, (ExitStatus?)null);
            },
            _kit.Kernel,
            seed: 4);
}
