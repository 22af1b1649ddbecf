using ProcHex.Ports;
using ProcHex.Backends.FreeBSD.Tests.FakeKernel;
using static Interop;
using static ProcHex.Backends.FreeBSD.Tests.AdapterHarness;

namespace ProcHex.Backends.FreeBSD.Tests;

[Trait("Backend", "FreeBSD")]
public abstract class ReleaseTests(FakeAttach attach)
{
    [Fact]
    [Trait("Spec", "S9")]
    public async Task Kill_kills_and_reaps_a_created_victim()
    {
        var kernel = FakePrograms.Kernel(attach);
        var process = await CreateAsync(kernel, FakePrograms.Sleeper);
        process.BeginControl();

        process.Release(ReleaseMode.Kill);
        process.Dispose();

        Assert.False(kernel.IsLive(process.Pid));
        Assert.Equal(Wait.ExitCode(0, Signals.SIGKILL), kernel.Process(process.Pid).WaitStatus);
    }

    [Fact]
    [Trait("Spec", "S9")]
    public async Task Run_detaches_a_running_grabbed_victim_with_its_text_restored()
    {
        var kernel = FakePrograms.Kernel(attach);
        var pid = kernel.StartUntraced(FakePrograms.Sleeper);
        var process = await GrabAsync(kernel, pid);
        process.BeginControl();
        process.PlantBreakpoint(FakePrograms.Work);
        process.Resume();

        process.Release(ReleaseMode.Run);

        var victim = kernel.Process(pid);
        Assert.False(victim.Traced);
        Assert.Equal(1, victim.Parent);
        Assert.Equal(FakeState.Running, victim.State);
        Assert.True(kernel.TextIsOriginal(pid));
        Assert.Contains($"kill {pid} {Signals.SIGSTOP}", kernel.Calls);
        Assert.Contains($"PT_DETACH {pid} 0", kernel.Calls);
    }

    [Fact]
    [Trait("Spec", "S9")]
    public async Task Dispose_without_release_kills_a_created_victim()
    {
        var kernel = FakePrograms.Kernel(attach);
        var process = await CreateAsync(kernel, FakePrograms.Loop);

        process.Dispose();

        Assert.False(kernel.IsLive(process.Pid));
    }

    [Fact]
    [Trait("Spec", "S20")]
    public async Task External_stop_keeps_the_victim_stopped_until_someone_else_sends_SIGCONT()
    {
        var kernel = FakePrograms.Kernel(attach);
        var pid = kernel.StartUntraced(FakePrograms.Sleeper);
        using var process = await GrabAsync(kernel, pid);
        process.BeginControl();
        process.Resume();

        kernel.SendSignal(pid, Signals.SIGSTOP);
        var stop = await process.WaitForStopAsync(Token);
        Assert.Equal(StopReason.StoppedByOthers, stop.Reason);
        process.AwaitExternalResume();
        var waiting = process.WaitForStopAsync(Token).AsTask();
        await Task.Delay(100);
        Assert.False(waiting.IsCompleted);
        Assert.Equal(FakeState.TraceStopped, kernel.Process(pid).State);

        kernel.SendSignal(pid, Signals.SIGCONT);
        var resumed = await waiting;

        Assert.Equal(StopReason.ResumedByOthers, resumed.Reason);
        Assert.Equal(FakeState.TraceStopped, kernel.Process(pid).State);
        process.Resume();
        Assert.Equal(FakeState.Running, kernel.Process(pid).State);
    }

    [Fact]
    [Trait("Spec", "S9")]
    [Trait("Spec", "S20")]
    public async Task Hang_leaves_an_externally_stopped_victim_in_a_real_job_control_stop()
    {
        var kernel = FakePrograms.Kernel(attach);
        var pid = kernel.StartUntraced(FakePrograms.Sleeper);
        var process = await GrabAsync(kernel, pid);
        process.BeginControl();
        process.Resume();
        kernel.SendSignal(pid, Signals.SIGSTOP);
        Assert.Equal(StopReason.StoppedByOthers, (await process.WaitForStopAsync(Token)).Reason);
        process.AwaitExternalResume();

        process.Release(ReleaseMode.Hang);

        var victim = kernel.Process(pid);
        Assert.False(victim.Traced);
        Assert.Equal(FakeState.JobStopped, victim.State);
        // The SIGSTOP is queued with kill(2) and PT_DETACH passes none: a transparent attach drops the first signal.
        Assert.Equal([$"kill {pid} {Signals.SIGSTOP}", $"PT_DETACH {pid} 0"], kernel.Calls.TakeLast(2));
        kernel.SendSignal(pid, Signals.SIGCONT);
        Assert.Equal(FakeState.Running, victim.State);
    }

    [Fact]
    [Trait("Spec", "S20")]
    public async Task A_victim_that_stops_itself_is_stopped_by_others()
    {
        var kernel = FakePrograms.Kernel(attach);
        using var process = await CreateAsync(kernel, FakePrograms.SelfStop);
        process.BeginControl();
        process.Resume();

        var stop = await process.WaitForStopAsync(Token);

        Assert.Equal(StopReason.StoppedByOthers, stop.Reason);
    }

    [Fact]
    [Trait("Spec", "S16")]
    public async Task Text_operations_on_a_running_victim_fail_clearly()
    {
        var kernel = FakePrograms.Kernel(attach);
        var pid = kernel.StartUntraced(FakePrograms.Sleeper);
        using var process = await GrabAsync(kernel, pid);
        process.BeginControl();
        process.Resume();

        var e = Assert.Throws<TracerException>(() => process.PlantBreakpoint(FakePrograms.Work));

        Assert.Equal(Errno.EBUSY, e.ErrorNumber);
        Assert.Contains("running", e.Message, StringComparison.Ordinal);
    }
}

/// <summary>ReleaseTests on a kernel with FreeBSD 14's PT_ATTACH (a queued SIGSTOP).</summary>
public sealed class ReleaseTestsClassicAttach() : ReleaseTests(FakeAttach.Classic);

/// <summary>ReleaseTests on a kernel with transparent attach (debug.ptrace_attach_transparent).</summary>
public sealed class ReleaseTestsTransparentAttach() : ReleaseTests(FakeAttach.Transparent);
