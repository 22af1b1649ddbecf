using ProcHex.Ports;
using ProcHex.Backends.FreeBSD.Tests.FakeKernel;
using static Interop;
using static ProcHex.Backends.FreeBSD.Tests.AdapterHarness;

namespace ProcHex.Backends.FreeBSD.Tests;

[Trait("Backend", "FreeBSD")]
public abstract class ControlTests(FakeAttach attach)
{
    [Fact]
    [Trait("Spec", "S14")]
    public async Task Breakpoint_stop_rewinds_the_PC_and_step_over_executes_the_original_once_per_hit()
    {
        var kernel = FakePrograms.Kernel(attach, n: 5);
        using var process = await CreateAsync(kernel, FakePrograms.Loop, "5");
        process.BeginControl();
        var patch = process.PlantBreakpoint(FakePrograms.Work);
        Assert.Equal(0x89UL, patch.OriginalBytes);
        Assert.Equal(0xCC, kernel.ReadByte(process.Pid, FakePrograms.Work));

        var (exit, hits, _) = await RunToExitAsync(process, new Dictionary<ulong, BreakpointPatch> { [FakePrograms.Work] = patch });

        Assert.Equal(StopKind.Exited, exit.Kind);
        Assert.Equal(3, exit.Exit.Code);
        Assert.Equal(5, hits[FakePrograms.Work]);
        Assert.Equal(5, kernel.Process(process.Pid).ExecutedAt(FakePrograms.Work));
        Assert.Empty(kernel.Violations);
        Assert.Equal(5, kernel.Calls.Count(c => c.StartsWith("PT_STEP", StringComparison.Ordinal)));
    }

    [Fact]
    [Trait("Spec", "S14")]
    public async Task Endbr64_is_emulated_one_stop_per_hit_without_PT_STEP()
    {
        var kernel = new FakeFreeBsdKernel(attach);
        kernel.AddFile(FakePrograms.Image(FakePrograms.Loop, [new Call(FakePrograms.Main), .. FakePrograms.Calls(FakePrograms.Guarded, 4), new Exit(0)]));
        using var process = await CreateAsync(kernel, FakePrograms.Loop);
        process.BeginControl();
        var patch = process.PlantBreakpoint(FakePrograms.Guarded);

        var (_, hits, _) = await RunToExitAsync(process, new Dictionary<ulong, BreakpointPatch> { [FakePrograms.Guarded] = patch });

        Assert.Equal(4, hits[FakePrograms.Guarded]);
        Assert.DoesNotContain(kernel.Calls, c => c.StartsWith("PT_STEP", StringComparison.Ordinal));
        Assert.Empty(kernel.Violations);
    }

    [Fact]
    [Trait("Spec", "S14")]
    public async Task A_programs_own_int3_is_not_ours_its_SIGTRAP_is_delivered()
    {
        var kernel = new FakeFreeBsdKernel(attach);
        kernel.AddFile(FakePrograms.Image(FakePrograms.Loop, new Call(FakePrograms.Main), new Call(FakePrograms.OwnTrap), new Exit(0)));
        using var process = await CreateAsync(kernel, FakePrograms.Loop);
        process.BeginControl();
        process.Resume();

        var stop = await process.WaitForStopAsync(Token);
        Assert.Equal(StopReason.Signal, stop.Reason);
        Assert.Equal(FakePrograms.OwnTrap + 1, process.ReadRegisters(stop.ThreadId).Rip);
        process.Resume();
        var end = await process.WaitForStopAsync(Token);

        Assert.Equal(Signals.SIGTRAP, end.Exit.Signal);
    }

    [Fact]
    [Trait("Spec", "S14")]
    public async Task Threads_hit_breakpoints_and_others_are_suspended_while_one_steps()
    {
        var kernel = FakePrograms.Kernel(attach, n: 6);
        using var process = await CreateAsync(kernel, FakePrograms.Threads, "12");
        process.BeginControl();
        var patch = process.PlantBreakpoint(FakePrograms.Work);

        var (exit, hits, reasons) = await RunToExitAsync(process, new Dictionary<ulong, BreakpointPatch> { [FakePrograms.Work] = patch });

        Assert.Equal(0, exit.Exit.Code);
        Assert.Equal(12, hits[FakePrograms.Work]);
        Assert.Equal(12, kernel.Process(process.Pid).ExecutedAt(FakePrograms.Work));
        Assert.Empty(kernel.Violations);
        Assert.Contains(kernel.Calls, c => c.StartsWith("PT_SUSPEND", StringComparison.Ordinal));
        Assert.All(reasons, r => Assert.Equal(StopReason.Breakpoint, r));
    }

    [Fact]
    [Trait("Spec", "S14")]
    public async Task Without_PT_SUSPEND_the_fake_would_see_another_thread_run_through_the_address()
    {
        // The fake's race model is what makes the previous test meaningful: a plain continue-style step lets the
        // next thread through the restored original byte.
        var kernel = FakePrograms.Kernel(attach, n: 1);
        using var process = await CreateAsync(kernel, FakePrograms.Threads);
        process.BeginControl();
        var patch = process.PlantBreakpoint(FakePrograms.Work);
        process.Resume();
        var stop = await process.WaitForStopAsync(Token);
        Assert.Equal(StopReason.Breakpoint, stop.Reason);
        process.WriteMemory(FakePrograms.Work, [(byte)patch.OriginalBytes]);
        kernel.FailNext(PtraceRequest.PT_GETNUMLWPS, Errno.EIO);

        Assert.Throws<TracerException>(() => { process.StepOverBreakpoint(stop.ThreadId, patch); process.Resume(); });
    }

    [Fact]
    [Trait("Spec", "S13")]
    public async Task Exec_forgets_breakpoints_without_touching_the_new_text()
    {
        var kernel = FakePrograms.Kernel(attach, n: 5);
        using var process = await CreateAsync(kernel, FakePrograms.Execer);
        process.BeginControl();
        var patch = process.PlantBreakpoint(FakePrograms.Work);
        process.Resume();

        var first = await process.WaitForStopAsync(Token);
        Assert.Equal(StopReason.Breakpoint, first.Reason);
        process.StepOverBreakpoint(first.ThreadId, patch);
        process.Resume();
        var exec = await process.WaitForStopAsync(Token);

        Assert.Equal(StopReason.ExecDone, exec.Reason);
        Assert.Empty(process.PlantedAddresses);
        Assert.True(kernel.TextIsOriginal(process.Pid));
        Assert.Equal(FakePrograms.Loop, kernel.Process(process.Pid).ImagePath);
        var again = process.PlantBreakpoint(FakePrograms.Work);
        var (exit, hits, _) = await RunToExitAsync(process, new Dictionary<ulong, BreakpointPatch> { [FakePrograms.Work] = again });
        Assert.Equal(5, hits[FakePrograms.Work]);
        Assert.Equal(3, exit.Exit.Code);
    }

    [Fact]
    [Trait("Spec", "S13")]
    public async Task Fork_child_is_cleaned_of_breakpoints_detached_and_runs_to_its_own_exit()
    {
        var kernel = FakePrograms.Kernel(attach, n: 4);
        using var process = await CreateAsync(kernel, FakePrograms.Forker, "4");
        process.BeginControl();
        var patch = process.PlantBreakpoint(FakePrograms.Work);

        var (exit, hits, reasons) = await RunToExitAsync(process, new Dictionary<ulong, BreakpointPatch> { [FakePrograms.Work] = patch });

        Assert.Equal(0, exit.Exit.Code);
        Assert.Equal(4, hits[FakePrograms.Work]);
        Assert.Contains(StopReason.ForkDone, reasons);
        var child = kernel.Process(process.Pid + 1);
        Assert.False(child.Traced);
        Assert.Equal(process.Pid, child.Parent);
        Assert.Equal(FakeState.Zombie, child.State);
        Assert.Equal(Wait.ExitCode(7, 0), child.WaitStatus);
        Assert.Equal(4, child.ExecutedAt(FakePrograms.Work));
        Assert.Empty(kernel.Violations);
    }

    [Fact]
    [Trait("Spec", "S13")]
    public async Task Vfork_keeps_breakpoints_out_of_the_shared_text_until_vfork_done()
    {
        var kernel = FakePrograms.Kernel(attach, n: 3);
        using var process = await CreateAsync(kernel, FakePrograms.Vforker, "3");
        process.BeginControl();
        var patch = process.PlantBreakpoint(FakePrograms.Work);

        var (exit, hits, reasons) = await RunToExitAsync(process, new Dictionary<ulong, BreakpointPatch> { [FakePrograms.Work] = patch });

        Assert.Equal(0, exit.Exit.Code);
        Assert.Equal([StopReason.ForkStarting, StopReason.VforkDone], reasons.Where(r => r != StopReason.Breakpoint));
        Assert.Equal(3, hits[FakePrograms.Work]);
        var child = kernel.Process(process.Pid + 1);
        Assert.Equal(FakePrograms.Loop, child.ImagePath);
        Assert.Empty(kernel.Violations);
    }

    [Fact]
    [Trait("Spec", "S19")]
    public async Task Death_by_signal_is_reported_with_the_signal_after_its_signal_stop()
    {
        var kernel = FakePrograms.Kernel(attach);
        using var process = await CreateAsync(kernel, FakePrograms.Crash);
        process.BeginControl();
        process.Resume();

        var stop = await process.WaitForStopAsync(Token);
        Assert.Equal(StopReason.Signal, stop.Reason);
        process.Resume();
        var end = await process.WaitForStopAsync(Token);

        Assert.Equal(StopKind.Exited, end.Kind);
        Assert.Equal(Signals.SIGSEGV, end.Exit.Signal);
        Assert.False(kernel.IsLive(process.Pid));
    }

    [Fact]
    [Trait("Spec", "S13")]
    public async Task Cancelled_wait_loses_no_stop()
    {
        var kernel = FakePrograms.Kernel(attach);
        var pid = kernel.StartUntraced(FakePrograms.Sleeper);
        using var process = await GrabAsync(kernel, pid);
        process.BeginControl();
        process.Resume();
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await process.WaitForStopAsync(cts.Token));
        kernel.SendSignal(pid, Signals.SIGSTOP);
        var stop = await process.WaitForStopAsync(Token);

        Assert.Equal(StopReason.StoppedByOthers, stop.Reason);
    }

    [Fact]
    [Trait("Spec", "S13")]
    public async Task RequestStop_is_reported_as_Interrupted_and_its_SIGSTOP_is_not_delivered()
    {
        var kernel = FakePrograms.Kernel(attach);
        var pid = kernel.StartUntraced(FakePrograms.Sleeper);
        using var process = await GrabAsync(kernel, pid);
        process.BeginControl();
        process.Resume();

        process.RequestStop();
        var stop = await process.WaitForStopAsync(Token);
        Assert.Equal(StopReason.Interrupted, stop.Reason);
        process.Resume();

        Assert.Equal(FakeState.Running, kernel.Process(pid).State);
        Assert.Contains($"PT_CONTINUE {pid} 0", kernel.Calls);
    }
}

/// <summary>ControlTests on a kernel with FreeBSD 14's PT_ATTACH (a queued SIGSTOP).</summary>
public sealed class ControlTestsClassicAttach() : ControlTests(FakeAttach.Classic);

/// <summary>ControlTests on a kernel with transparent attach (debug.ptrace_attach_transparent).</summary>
public sealed class ControlTestsTransparentAttach() : ControlTests(FakeAttach.Transparent);
