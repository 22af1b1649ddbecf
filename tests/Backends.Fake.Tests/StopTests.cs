using ProcHex.Ports;

namespace ProcHex.Backends.Fake.Tests;

public class StopTests
{
    private readonly TestKit _kit = new();

    [Fact]
    [Trait("Spec", "S20")]
    public async Task A_victim_stopped_by_others_stays_stopped_until_they_resume_it()
    {
        var process = _kit.Start(_kit.Programs.SelfStop);

        var stopped = _kit.NextStop(process);
        Assert.Equal(StopReason.StoppedByOthers, stopped.Reason);
        process.AwaitExternalResume();
        var wait = process.WaitForStopAsync(CancellationToken.None);
        Assert.Equal(0, _kit.Kernel.RunUntilQuiet());
        Assert.False(wait.IsCompleted);
        Assert.True(_kit.Kernel.Observe(process.Pid).Stopped);

        _kit.Kernel.ContinueByOthers(process.Pid);

        Assert.True(wait.IsCompleted);
        Assert.Equal(StopReason.ResumedByOthers, (await wait).Reason);
        Assert.Equal(0, _kit.Kernel.RunUntilQuiet());
        process.Resume();
        Assert.Equal(ExitStatus.FromCode(0), _kit.NextStop(process).Exit);
    }

    [Fact]
    [Trait("Spec", "S20")]
    public void A_resume_by_others_before_the_tracer_awaits_it_is_still_reported()
    {
        var process = _kit.Start(_kit.Programs.SelfStop);
        Assert.Equal(StopReason.StoppedByOthers, _kit.NextStop(process).Reason);
        _kit.Kernel.SendSignal(process.Pid, Signals.Cont);

        process.AwaitExternalResume();

        Assert.Equal(StopReason.ResumedByOthers, _kit.NextStop(process).Reason);
    }

    [Fact]
    [Trait("Spec", "S20")]
    public void A_tracer_crash_while_awaiting_an_external_resume_leaves_the_victim_stopped()
    {
        var process = _kit.Start(_kit.Programs.SelfStop);
        _kit.NextStop(process);
        process.AwaitExternalResume();

        _kit.Kernel.CrashTracer();

        Assert.Equal(new FakeObservation(true, false, true, false), _kit.Kernel.Observe(process.Pid));
        Assert.Equal(0, _kit.Kernel.RunUntilQuiet());
        _kit.Kernel.ContinueByOthers(process.Pid);
        _kit.Kernel.RunUntilQuiet();
        Assert.Equal(ExitStatus.FromCode(0), _kit.Kernel.ExitStatusOf(process.Pid));
    }

    [Fact]
    public void A_tracer_crash_kills_created_victims_and_leaves_grabbed_ones_running()
    {
        var created = _kit.Create(_kit.Programs.Sleeper);
        var grabbedPid = _kit.Kernel.Spawn(_kit.Programs.Sleeper);
        _kit.Grab(grabbedPid);

        _kit.Kernel.CrashTracer();

        Assert.False(_kit.Kernel.Exists(created.Pid));
        Assert.Equal(new FakeObservation(true, false, false, false), _kit.Kernel.Observe(grabbedPid));
    }

    [Fact]
    public void SIGSTOP_from_outside_is_reported_as_stopped_by_others()
    {
        var process = _kit.Start(_kit.Programs.Sleeper);
        _kit.Kernel.RunUntilQuiet(5);

        _kit.Kernel.SendSignal(process.Pid, Signals.Stop);

        Assert.Equal(StopReason.StoppedByOthers, _kit.NextStop(process).Reason);
    }

    [Fact]
    public void A_group_stop_arriving_during_a_trace_stop_is_reported_after_the_resume()
    {
        var process = _kit.Start(_kit.Programs.Sleeper);
        process.RequestStop();
        _kit.NextStop(process);
        _kit.Kernel.SendSignal(process.Pid, Signals.Stop);

        process.Resume();

        Assert.Equal(StopReason.StoppedByOthers, _kit.NextStop(process).Reason);
    }

    [Fact]
    public async Task RequestStop_completes_a_pending_wait_with_Interrupted()
    {
        var process = _kit.Start(_kit.Programs.Sleeper);
        _kit.Kernel.RunUntilQuiet(7);
        var wait = process.WaitForStopAsync(CancellationToken.None);
        Assert.False(wait.IsCompleted);

        process.RequestStop();

        Assert.Equal(StopReason.Interrupted, (await wait).Reason);
        Assert.True(_kit.Kernel.Observe(process.Pid).Stopped);
        Assert.False(_kit.Kernel.CanProgress);
    }

    [Fact]
    public void RequestStop_is_harmless_when_dead()
    {
        var process = _kit.Start(_kit.Programs.Loop, "1");
        _kit.Kernel.RunUntilQuiet();
        var exit = _kit.NextStop(process);

        process.RequestStop();

        Assert.Equal(StopKind.Exited, exit.Kind);
        Assert.DoesNotContain("stop requested", string.Join('\n', _kit.Kernel.Log), StringComparison.Ordinal);
    }

    [Fact]
    [Trait("Spec", "S9")]
    public void RequestStop_on_a_stopped_victim_with_nothing_to_report_still_completes_the_next_wait()
    {
        _kit.Kernel.Faults = new FaultPlan().FailAt(FakeOperation.Resume, 2, Errno.EIO);
        var process = _kit.Start(_kit.Programs.Sleeper);
        process.RequestStop();
        var first = _kit.NextStop(process);
        Assert.Throws<TracerException>(process.Resume);

        process.RequestStop();

        Assert.Equal(StopEvent.Stopped(StopReason.Interrupted, first.ThreadId, first.ProgramCounter), _kit.NextStop(process));
    }

    [Fact]
    public void RequestStop_with_a_report_unread_leaves_that_report_for_the_next_wait()
    {
        var process = _kit.Create(_kit.Programs.Loop, "1");
        process.PlantBreakpoint(TestKit.Address(process, "work"));
        process.Resume();
        _kit.Kernel.RunUntilQuiet();

        process.RequestStop();

        Assert.Equal(StopReason.Breakpoint, _kit.NextStop(process).Reason);
        var next = process.WaitForStopAsync(CancellationToken.None);
        Assert.False(next.IsCompleted);
    }

    [Fact]
    [Trait("Spec", "S9")]
    [Trait("Spec", "S20")]
    public async Task RequestStop_wakes_a_wait_for_an_external_resume_and_the_victim_stays_stopped()
    {
        var process = _kit.Start(_kit.Programs.SelfStop);
        Assert.Equal(StopReason.StoppedByOthers, _kit.NextStop(process).Reason);
        process.AwaitExternalResume();
        var wait = process.WaitForStopAsync(CancellationToken.None);

        process.RequestStop();

        Assert.Equal(StopReason.Interrupted, (await wait).Reason);
        process.Release(ReleaseMode.Hang);
        Assert.Equal(new FakeObservation(true, false, true, false), _kit.Kernel.Observe(process.Pid));
        _kit.Kernel.ContinueByOthers(process.Pid);
        _kit.Kernel.RunUntilQuiet();
        Assert.Equal(ExitStatus.FromCode(0), _kit.Kernel.ExitStatusOf(process.Pid));
    }

    [Fact]
    public void Cancelling_a_wait_abandons_the_wait_not_the_victim()
    {
        var process = _kit.Start(_kit.Programs.Sleeper);
        using var cancel = new CancellationTokenSource();
        var wait = process.WaitForStopAsync(cancel.Token).AsTask();

        cancel.Cancel();

        Assert.True(wait.IsCanceled);
        Assert.True(_kit.Kernel.CanProgress);
        process.RequestStop();
        Assert.Equal(StopReason.Interrupted, _kit.NextStop(process).Reason);
    }

    [Fact]
    public void A_fatal_signal_stops_a_traced_victim_first_and_kills_it_on_resume()
    {
        var process = _kit.Start(_kit.Programs.Crash);

        var signal = _kit.NextStop(process);
        Assert.Equal(StopReason.Signal, signal.Reason);
        process.Resume();

        Assert.Equal(StopEvent.Exited(process.Pid, ExitStatus.FromSignal(Signals.Segv, coreDumped: true)), _kit.NextStop(process));
    }

    [Fact]
    public void SIGKILL_from_outside_ends_the_victim_at_once()
    {
        var process = _kit.Start(_kit.Programs.Sleeper);

        _kit.Kernel.Kill(process.Pid);

        Assert.Equal(StopEvent.Exited(process.Pid, ExitStatus.FromSignal(Signals.Kill)), _kit.NextStop(process));
        Assert.True(_kit.Kernel.Observe(process.Pid).Zombie);
        Assert.True(Assert.Throws<TracerException>(process.Resume).IsGone);
    }

    [Fact]
    public void Resume_of_a_running_victim_is_an_error()
    {
        var process = _kit.Start(_kit.Programs.Sleeper);

        Assert.Equal(Errno.EBUSY, Assert.Throws<TracerException>(process.Resume).ErrorNumber);
    }

    [Fact]
    public void Waiting_after_the_exit_was_reported_fails_as_gone()
    {
        var process = _kit.Start(_kit.Programs.Loop, "1");
        _kit.NextStop(process);

        var error = Assert.Throws<TracerException>(() => process.WaitForStopAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult());

        Assert.True(error.IsGone);
    }
}
