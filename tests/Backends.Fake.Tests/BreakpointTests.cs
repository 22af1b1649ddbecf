using ProcHex.Ports;

namespace ProcHex.Backends.Fake.Tests;

public class BreakpointTests
{
    private readonly TestKit _kit = new();

    [Fact]
    public void Untraced_victim_runs_through_unplanted_text()
    {
        var pid = _kit.Kernel.Spawn(_kit.Programs.Loop, "3", "5");

        _kit.Kernel.RunUntilQuiet();

        Assert.False(_kit.Kernel.Exists(pid));
        Assert.Equal(ExitStatus.FromCode(5), _kit.Kernel.ExitStatusOf(pid));
    }

    [Fact]
    [Trait("Spec", "S14")]
    public void Planted_int3_stops_a_traced_victim_with_the_pc_at_the_breakpoint()
    {
        var process = _kit.Create(_kit.Programs.Loop, "2");
        process.BeginControl();
        var work = TestKit.Address(process, "work");
        var patch = process.PlantBreakpoint(work);
        process.Resume();

        var stop = _kit.NextStop(process);

        Assert.Equal(StopEvent.Stopped(StopReason.Breakpoint, process.Pid, work), stop);
        Assert.Equal(work, process.ReadRegisters(stop.ThreadId).Rip);
        Assert.Equal(work, patch.Address);
        Assert.Equal(1, patch.Length);
        Assert.Equal(_kit.Programs.Loop.Text.Span[(int)(work - _kit.Programs.Loop.TextBase)], (byte)patch.OriginalBytes);
        Assert.Equal([work], _kit.Kernel.TextDifferences(process.Pid));
    }

    [Fact]
    [Trait("Spec", "S14")]
    public void Step_over_runs_the_original_instruction_once_and_keeps_the_int3()
    {
        var process = _kit.Create(_kit.Programs.Loop, "3");
        process.BeginControl();
        var work = TestKit.Address(process, "work");
        var patch = process.PlantBreakpoint(work);
        process.Resume();
        var text = new byte[1];

        for (var hit = 1; hit <= 3; hit++)
        {
            var stop = _kit.NextStop(process);
            Assert.Equal(StopReason.Breakpoint, stop.Reason);
            Assert.Equal(hit - 1, TestKit.ReadCalls(process));
            process.StepOverBreakpoint(stop.ThreadId, patch);
            process.Resume();
            process.ReadMemory(work, text);
            Assert.Equal(0xCC, text[0]);
        }

        Assert.Equal(StopKind.Exited, _kit.NextStop(process).Kind);
    }

    [Fact]
    public void Resuming_on_a_breakpoint_without_stepping_over_hits_it_again()
    {
        var process = _kit.Create(_kit.Programs.Loop, "3");
        process.BeginControl();
        var work = TestKit.Address(process, "work");
        process.PlantBreakpoint(work);
        process.Resume();
        _kit.NextStop(process);

        process.Resume();
        var again = _kit.NextStop(process);

        Assert.Equal(StopEvent.Stopped(StopReason.Breakpoint, process.Pid, work), again);
        Assert.Equal(0, TestKit.ReadCalls(process));
    }

    [Fact]
    public void Removing_the_breakpoint_restores_the_text_and_the_victim_runs_on()
    {
        var process = _kit.Create(_kit.Programs.Loop, "2");
        process.BeginControl();
        var patch = process.PlantBreakpoint(TestKit.Address(process, "work"));
        process.Resume();
        _kit.NextStop(process);

        process.RemoveBreakpoint(patch);
        process.Resume();

        Assert.True(_kit.Kernel.TextIsOriginal(process.Pid));
        Assert.Equal(ExitStatus.FromCode(0), _kit.NextStop(process).Exit);
    }

    [Fact]
    [Trait("Spec", "S9")]
    public void An_int3_left_behind_kills_the_released_victim_with_SIGTRAP()
    {
        var pid = _kit.Kernel.Spawn(_kit.Programs.Sleeper);
        var process = _kit.Grab(pid);
        process.PlantBreakpoint(TestKit.Address(process, "work"));

        process.Release(ReleaseMode.Run);
        _kit.Kernel.RunUntilQuiet(100);

        Assert.False(_kit.Kernel.Exists(pid));
        Assert.Equal(ExitStatus.FromSignal(Signals.Trap, coreDumped: true), _kit.Kernel.ExitStatusOf(pid));
    }

    [Fact]
    public void Strict_text_writes_on_a_running_victim_fail_with_EBUSY_and_change_nothing()
    {
        _kit.Kernel.RequireStopForWrites = true;
        var process = _kit.Start(_kit.Programs.Sleeper);

        var error = Assert.Throws<TracerException>(() => process.PlantBreakpoint(TestKit.Address(process, "work")));

        Assert.Equal(Errno.EBUSY, error.ErrorNumber);
        Assert.True(_kit.Kernel.TextIsOriginal(process.Pid));
    }

    [Fact]
    public void A_breakpoint_planted_while_the_victim_runs_takes_effect_at_the_next_execution()
    {
        var process = _kit.Start(_kit.Programs.Sleeper);
        _kit.Kernel.RunUntilQuiet(10);

        var patch = process.PlantBreakpoint(TestKit.Address(process, "work"));

        Assert.Equal(StopEvent.Stopped(StopReason.Breakpoint, process.Pid, patch.Address), _kit.NextStop(process));
    }

    [Fact]
    public void Planting_on_unmapped_memory_fails_with_EIO()
    {
        var process = _kit.Create(_kit.Programs.Loop);

        var error = Assert.Throws<TracerException>(() => process.PlantBreakpoint(0x10));

        Assert.Equal(Errno.EIO, error.ErrorNumber);
    }

    [Fact]
    public void Reads_stop_short_at_an_unmapped_page()
    {
        var process = _kit.Create(_kit.Programs.Loop);
        var textEnd = _kit.Programs.Loop.TextBase + (ulong)_kit.Programs.Loop.Text.Length;
        var calls = TestKit.Address(process, "calls");
        var dataPageEnd = (calls & ~0xfffUL) + 0x1000;

        var buffer = new byte[64];
        var read = process.ReadMemory(dataPageEnd - 16, buffer);

        Assert.Equal(16, read);
        Assert.True(textEnd <= calls);
    }

    [Fact]
    public void Every_thread_stops_on_a_planted_breakpoint_and_all_hits_are_counted()
    {
        var process = _kit.Create(_kit.Programs.Threads, "10");
        process.BeginControl();
        var patch = process.PlantBreakpoint(TestKit.Address(process, "work"));
        process.Resume();

        var stops = _kit.RunToExit(process, patch);

        var hits = stops.Where(s => s.Reason == StopReason.Breakpoint).ToList();
        Assert.Equal(10, hits.Count);
        Assert.Equal(4, hits.Select(h => h.ThreadId).Distinct().Count());
        Assert.Equal(ExitStatus.FromCode(0), stops[^1].Exit);
    }

    [Fact]
    [Trait("Spec", "S14")]
    public void Simultaneous_traps_arrive_after_the_resume_even_when_the_breakpoint_is_gone()
    {
        _kit.Kernel.SimultaneousTraps = true;
        var process = _kit.Create(_kit.Programs.Threads, "8");
        var patch = process.PlantBreakpoint(TestKit.Address(process, "work"));
        process.Resume();
        var first = _kit.NextStop(process);
        Assert.Equal(StopReason.Breakpoint, first.Reason);
        Assert.Contains(_kit.Kernel.Log, line => line.Contains("trapped at", StringComparison.Ordinal));

        process.RemoveBreakpoint(patch);
        process.Resume();
        var late = _kit.NextStop(process);

        Assert.Equal(StopReason.Breakpoint, late.Reason);
        Assert.NotEqual(first.ThreadId, late.ThreadId);
        Assert.Equal(patch.Address, late.ProgramCounter);
        Assert.True(_kit.Kernel.TextIsOriginal(process.Pid));
        process.Resume();
        Assert.Equal(ExitStatus.FromCode(0), _kit.RunToExit(process)[^1].Exit);
    }
}
