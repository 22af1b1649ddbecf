using ProcHex.Ports;

namespace ProcHex.Backends.Fake.Tests;

/// <summary>
/// Issue 18 item 5 at the port: the fake's in-victim counters count every call without a stop, are refused where the
/// real backend would refuse, and leave the text as it was after removal, release, fork, exec and death.
/// </summary>
public class InVictimCounterTests
{
    private readonly TestKit _kit = new();

    [Fact]
    [Trait("Issue", "18.5")]
    public void Issue18_every_call_is_counted_exactly_and_the_victim_never_stops_for_one()
    {
        var process = _kit.Create(_kit.Programs.Loop, "7");
        process.BeginControl();
        var counter = InstallAt(process, "work");
        Assert.Equal([TestKit.Address(process, "work")], _kit.Kernel.CounterEntries(process.Pid));
        var jump = new byte[FakeKernel.CounterJumpLength];
        Assert.Equal(jump.Length, process.ReadMemory(counter.Entry, jump));
        Assert.Equal(0xE9, jump[0]);

        process.Resume();
        var events = _kit.RunToExit(process);

        Assert.Equal(7UL, counter.Value);
        Assert.Equal(StopKind.Exited, Assert.Single(events).Kind);
        Assert.DoesNotContain(_kit.Kernel.Log, line => line.Contains("stop breakpoint", StringComparison.Ordinal));
    }

    [Fact]
    [Trait("Issue", "18.5")]
    public void Issue18_refused_sites_say_why_and_the_others_still_count()
    {
        var process = _kit.Create(_kit.Programs.Loop, "3");
        process.BeginControl();
        var main = TestKit.Address(process, "main");
        var work = TestKit.Address(process, "work");
        var trap = process.PlantBreakpoint(TestKit.Address(process, "_start") + 2);

        var placements = process.InstallCounters(
        [
            new CounterSite(main, 0x40),
            new CounterSite(work, 3),
            new CounterSite(trap.Address - 2, 0x40),
            new CounterSite(0xdead0000, 0x40),
            new CounterSite(work, 0x40),
        ]);

        Assert.Equal($"0x{main:x}: a branch of the function lands inside the 5 bytes the jump would replace", placements[0].Refusal);
        Assert.Equal($"0x{work:x}: the function's 3 bytes cannot take a 5-byte jump", placements[1].Refusal);
        Assert.Equal($"0x{trap.Address - 2:x}: a breakpoint is planted at 0x{trap.Address:x}, in the bytes the jump would replace", placements[2].Refusal);
        Assert.Equal("0xdead0000: the text cannot be read", placements[3].Refusal);
        Assert.All(placements.Take(4), p => Assert.Null(p.Counter));
        var counter = Assert.IsAssignableFrom<ISharedCounter>(placements[4].Counter);
        Assert.Null(placements[4].Refusal);
        Assert.Same(counter, process.InstallCounters([new CounterSite(work, 0x40)])[0].Counter);
        Assert.Equal(0x40, process.Symbols.FunctionSize(work));
        Assert.Null(process.Symbols.FunctionSize(TestKit.Address(process, "calls")));
        Assert.Null(process.Symbols.FunctionSize(work + 1));
    }

    [Fact]
    [Trait("Issue", "18.5")]
    public void Issue18_removal_restores_the_text_byte_for_byte_and_the_count_stays_readable()
    {
        var process = _kit.Create(_kit.Programs.Sleeper);
        process.BeginControl();
        var original = _kit.Programs.Sleeper.Text.ToArray();
        var counter = InstallAt(process, "work");
        Assert.False(_kit.Kernel.TextIsOriginal(process.Pid));
        process.Resume();
        _kit.Kernel.RunUntilQuiet(50);
        var counted = counter.Value;

        process.RemoveCounters([counter]);
        process.RemoveCounters([counter]);
        _kit.Kernel.RunUntilQuiet(50);

        Assert.True(counted > 0);
        Assert.Equal(counted, counter.Value);
        Assert.True(_kit.Kernel.TextIsOriginal(process.Pid));
        var text = new byte[original.Length];
        Assert.Equal(text.Length, process.ReadMemory(_kit.Programs.Sleeper.TextBase, text));
        Assert.Equal(original, text);
        Assert.Empty(_kit.Kernel.CounterEntries(process.Pid));
    }

    [Fact]
    [Trait("Issue", "18.5")]
    public void Issue18_a_fork_child_gets_the_original_text_and_its_calls_are_not_counted()
    {
        var process = _kit.Create(_kit.Programs.Fork, "3");
        process.BeginControl();
        var counter = InstallAt(process, "work");
        process.Resume();

        Assert.Equal(StopReason.ForkStarting, _kit.NextStop(process).Reason);
        process.Resume();
        Assert.Equal(StopReason.ForkDone, _kit.NextStop(process).Reason);
        var child = Assert.Single(_kit.Kernel.ChildrenOf(process.Pid));
        var childClean = _kit.Kernel.TextIsOriginal(child);
        var childCounters = _kit.Kernel.CounterEntries(child);
        process.Resume();
        var events = _kit.RunToExit(process);

        Assert.True(childClean);
        Assert.Empty(childCounters);
        Assert.Equal(ExitStatus.FromCode(7), _kit.Kernel.ExitStatusOf(child));
        Assert.Equal(3UL, counter.Value);
        Assert.DoesNotContain(events, e => e.Reason == StopReason.Breakpoint);
    }

    [Fact]
    [Trait("Issue", "18.5")]
    public void Issue18_a_vfork_child_shares_the_counter_and_its_calls_count_for_the_parent()
    {
        var image = new FakeImageBuilder("/bin/vfork-calls").Function("main").Function("work")
            .Program(Steps.Vfork(Steps.Loop(2, Steps.Call("work")), Steps.Exit(0)), Steps.WaitChildren(), Steps.Loop(3, Steps.Call("work")), Steps.Exit(0))
            .Build();
        _kit.Kernel.Register(image);
        var process = _kit.Create(image);
        process.BeginControl();
        var counter = InstallAt(process, "work");
        process.Resume();

        _kit.RunToExit(process);

        Assert.Equal(5UL, counter.Value);
    }

    [Fact]
    [Trait("Issue", "18.5")]
    public void Issue18_an_exec_takes_the_counters_with_the_image_and_the_count_stays_readable()
    {
        var process = _kit.Create(_kit.Programs.Exec, "4");
        process.BeginControl();
        var counter = InstallAt(process, "work");
        process.Resume();

        Assert.Equal(StopReason.ExecDone, _kit.NextStop(process).Reason);
        var after = (Clean: _kit.Kernel.TextIsOriginal(process.Pid), Entries: _kit.Kernel.CounterEntries(process.Pid), Count: counter.Value);
        process.RemoveCounters([counter]);
        process.Resume();
        _kit.RunToExit(process);

        Assert.True(after.Clean);
        Assert.Empty(after.Entries);
        Assert.Equal(1UL, after.Count);
        Assert.Equal(1UL, counter.Value);
        Assert.DoesNotContain(_kit.Kernel.Log, l => l.Contains("counter 0x", StringComparison.Ordinal) && l.Contains("removed", StringComparison.Ordinal));
    }

    [Fact]
    [Trait("Issue", "18.5")]
    public void Issue18_release_takes_every_jump_out_and_the_victim_runs_on_uncounted()
    {
        var pid = _kit.Kernel.Spawn(_kit.Programs.Sleeper);
        var process = _kit.Grab(pid);
        process.BeginControl();
        var counter = InstallAt(process, "work");
        process.Resume();
        _kit.Kernel.RunUntilQuiet(40);

        process.Release(ReleaseMode.Run);
        var atRelease = counter.Value;
        _kit.Kernel.RunUntilQuiet(40);

        Assert.True(atRelease > 0);
        Assert.Equal(atRelease, counter.Value);
        Assert.True(_kit.Kernel.TextIsOriginal(pid));
        Assert.False(_kit.Kernel.Observe(pid).Traced);
    }

    [Fact]
    [Trait("Issue", "18.5")]
    public void Issue18_the_count_stays_readable_after_the_victim_is_killed_and_removal_then_writes_nothing()
    {
        var process = _kit.Create(_kit.Programs.Sleeper);
        process.BeginControl();
        var counter = InstallAt(process, "work");
        process.Resume();
        _kit.Kernel.RunUntilQuiet(30);
        var counted = counter.Value;

        _kit.Kernel.Kill(process.Pid);
        Assert.Equal(StopKind.Exited, _kit.NextStop(process).Kind);
        process.RemoveCounters([counter]);

        Assert.True(counted > 0);
        Assert.Equal(counted, counter.Value);
    }

    [Fact]
    [Trait("Issue", "18.5")]
    public void Issue18_a_failed_install_writes_nothing_and_a_failed_removal_leaves_the_jump_counting()
    {
        _kit.Kernel.Faults = new FaultPlan().FailAt(FakeOperation.InstallCounters, 1, Errno.EIO).FailAt(FakeOperation.RemoveCounters, 1, Errno.ESRCH);
        var process = _kit.Create(_kit.Programs.Sleeper);
        process.BeginControl();
        var work = TestKit.Address(process, "work");

        var install = Assert.Throws<TracerException>(() => process.InstallCounters([new CounterSite(work, 0x40)]));
        var cleanAfterFailedInstall = _kit.Kernel.TextIsOriginal(process.Pid);
        var counter = InstallAt(process, "work");
        var remove = Assert.Throws<TracerException>(() => process.RemoveCounters([counter]));
        process.Resume();
        _kit.Kernel.RunUntilQuiet(30);

        Assert.Equal(TracerErrorKind.BadAddress, install.Kind);
        Assert.Equal(TracerErrorKind.Gone, remove.Kind);
        Assert.True(cleanAfterFailedInstall);
        Assert.Equal([work], _kit.Kernel.CounterEntries(process.Pid));
        Assert.True(counter.Value > 0);
        Assert.Equal(2, _kit.Kernel.Faults.Calls(FakeOperation.InstallCounters));
        Assert.Equal(1, _kit.Kernel.Faults.Calls(FakeOperation.RemoveCounters));
        process.RemoveCounters([counter]);
        Assert.True(_kit.Kernel.TextIsOriginal(process.Pid));
    }

    private static ISharedCounter InstallAt(FakeProcess process, string function)
    {
        var address = TestKit.Address(process, function);
        var placement = Assert.Single(process.InstallCounters([new CounterSite(address, process.Symbols.FunctionSize(address))]));
        Assert.Null(placement.Refusal);
        return placement.Counter!;
    }
}
