using NSubstitute;
using ProcHex.Backends.Fake;
using ProcHex.Ports;
using ProcHex.Core.Tests.Ports;

namespace ProcHex.Core.Tests;

/// <summary>Regression tests for the core bugs the deterministic simulation found (one test per bug).</summary>
public class SimulationFoundBugsTests
{
    private readonly FakeKernel _kernel = new();
    private readonly FakePrograms _programs;

    public SimulationFoundBugsTests() => _programs = new FakePrograms().RegisterWith(_kernel);

    [Fact]
    [Trait("Spec", "S23")]
    [Trait("Spec", "S8")]
    public async Task Releasing_a_cached_handle_nobody_references_is_an_error_not_a_negative_count()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var handle = await session.GrabAsync(700, GrabMode.ReadOnly);
        await session.ReleaseAsync(handle);

        await Assert.ThrowsAsync<InvalidHandleException>(() => session.ReleaseAsync(handle));

        Assert.Equal(0, handle.Victim.References);
        Assert.Same(handle, await session.GrabAsync(700, GrabMode.ReadOnly));
        Assert.Equal(1, handle.Victim.References);
    }

    [Fact]
    [Trait("Spec", "S1")]
    public void A_create_with_a_cancellable_token_completes_on_the_callers_context()
    {
        var time = new SimulatedTime();
        var pid = DeterministicScheduler.Run(
            async () =>
            {
                await using var session = new ProcHexSession(new FakeTracer(_kernel), new ProcHexOptions { TimeProvider = time });
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5), time);
                var handle = await session.CreateAsync(_programs.Loop.Path, [_programs.Loop.Path, "2"], cancellationToken: timeout.Token);
                Assert.Equal(VictimState.Idle, handle.State);
                return handle.Pid;
            },
            _kernel,
            new DeterministicSchedulerOptions { Seed = 1, Time = time, FailOnForeignPost = true });

        Assert.False(_kernel.Exists(pid));
    }

    [Fact]
    [Trait("Spec", "S13")]
    public async Task A_breakpoint_set_while_a_fork_is_in_progress_waits_for_fork_done()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var handle = await session.GrabAsync(700);
        var script = tracer.Last;
        session.Continue(handle);
        await script.WaitForWaitsAsync(1);
        script.Push(StopEvent.Stopped(StopReason.ForkStarting, 700));
        await script.WaitForWaitsAsync(2);

        await session.SetBreakpointAsync(handle, PortScript.WorkAddress, _ => { });

        script.Process.DidNotReceive().PlantBreakpoint(PortScript.WorkAddress);
        script.Push(StopEvent.Stopped(StopReason.ForkDone, 700));
        await script.WaitForWaitsAsync(3);
        script.Process.Received(1).PlantBreakpoint(PortScript.WorkAddress);
    }

    [Fact]
    [Trait("Spec", "S10")]
    public void A_trap_that_fails_to_come_out_once_is_retried_before_the_victim_idles()
    {
        _kernel.Faults = new FaultPlan().FailAt(FakeOperation.RemoveBreakpoint, 1, Errno.EIO);

        var original = DeterministicScheduler.Run(
            async () =>
            {
                await using var session = new ProcHexSession(new FakeTracer(_kernel));
                var handle = await session.CreateAsync(_programs.Loop.Path, [_programs.Loop.Path, "2"], new CreateOptions { StopAt = Rendezvous.Main });
                Assert.Equal(VictimState.Idle, handle.State);
                return _kernel.TextIsOriginal(handle.Pid);
            },
            _kernel,
            seed: 1);

        Assert.True(original);
        Assert.Contains(new FaultSite(FakeOperation.RemoveBreakpoint, Errno.EIO), _kernel.Faults.Hits);
    }

    [Fact]
    [Trait("Spec", "S9")]
    public void A_stop_request_that_fails_once_does_not_hang_destroy()
    {
        var pid = _kernel.Spawn(_programs.Sleeper);

        DeterministicScheduler.Run(
            async () =>
            {
                var session = new ProcHexSession(new FakeTracer(_kernel));
                var handle = await session.GrabAsync(pid);
                session.Continue(handle);
                await _kernel.WaitStepsAsync(5);
                _kernel.Faults = new FaultPlan().FailAt(FakeOperation.RequestStop, 1, Errno.EIO);
                await session.DisposeAsync();
            },
            _kernel,
            new DeterministicSchedulerOptions { Seed = 2, ForeignWorkGrace = TimeSpan.FromMilliseconds(50) });

        Assert.Equal(new FakeObservation(true, false, false, false), _kernel.Observe(pid));
        Assert.True(_kernel.TextIsOriginal(pid));
    }

    [Fact]
    [Trait("Spec", "S20")]
    public void An_external_resume_is_heard_even_if_arranging_to_hear_it_failed_once()
    {
        var pid = _kernel.Spawn(_programs.Sleeper);
        var time = new SimulatedTime();

        DeterministicScheduler.Run(
            async () =>
            {
                var session = new ProcHexSession(new FakeTracer(_kernel));
                var handle = await session.GrabAsync(pid);
                session.Continue(handle);
                await _kernel.WaitStepsAsync(3);
                _kernel.Faults = new FaultPlan().FailAt(FakeOperation.AwaitExternalResume, 1, Errno.EPERM);
                _kernel.SendSignal(pid, Signals.Stop);
                await Task.Delay(TimeSpan.FromMilliseconds(10), time);
                Assert.Equal(VictimState.HeldByOthers, handle.State);
                _kernel.SendSignal(pid, Signals.Cont);
                await _kernel.WaitStepsAsync(3);
                await session.DisposeAsync();
            },
            _kernel,
            new DeterministicSchedulerOptions { Seed = 3, Time = time, ForeignWorkGrace = TimeSpan.FromMilliseconds(50) });

        Assert.Contains($"pid {pid}: released (Run)", _kernel.Log);
        Assert.False(_kernel.Observe(pid).Stopped);
    }

    [Theory]
    [Trait("Spec", "S20")]
    [Trait("Spec", "S9")]
    [InlineData(true)]
    [InlineData(false)]
    public void A_SIGCONT_racing_the_release_of_a_victim_stopped_by_others_gets_it_killed_or_run_not_hung(bool created)
    {
        var pid = created ? 0 : _kernel.Spawn(_programs.Sleeper);

        DeterministicScheduler.Run(
            async () =>
            {
                await using var session = new ProcHexSession(new FakeTracer(_kernel));
                var handle = created
                    ? await session.CreateAsync(_programs.Sleeper.Path, [_programs.Sleeper.Path])
                    : await session.GrabAsync(pid);
                pid = handle.Pid;
                session.Continue(handle);
                await _kernel.WaitStepsAsync(3);

                // In one turn, before the loop runs again: it is handed the stop by others, the release asks it to quit
                // (Interrupted is queued), and the SIGCONT lands before the loop arranges to hear of one, so arranging it
                // queues ResumedByOthers too. The loop quits with both unread.
                _kernel.SendSignal(pid, Signals.Stop);
                var release = session.ReleaseAsync(handle);
                _kernel.SendSignal(pid, Signals.Cont);
                await release;
            },
            _kernel,
            new DeterministicSchedulerOptions { Seed = 5, ForeignWorkGrace = TimeSpan.FromMilliseconds(50) });

        Assert.DoesNotContain($"pid {pid}: released (Hang)", _kernel.Log);
        Assert.Contains($"pid {pid}: released ({(created ? ReleaseMode.Kill : ReleaseMode.Run)})", _kernel.Log);
        Assert.Equal(created ? FakeObservation.Gone : new FakeObservation(true, false, false, false), _kernel.Observe(pid));
    }

    [Fact]
    [Trait("Spec", "S12")]
    [Trait("Spec", "S13")]
    public void Control_that_fails_to_begin_once_still_sees_forks_so_the_child_gets_clean_text()
    {
        _kernel.Faults = new FaultPlan().FailAt(FakeOperation.BeginControl, 1, Errno.EPERM);

        var child = DeterministicScheduler.Run(
            async () =>
            {
                await using var session = new ProcHexSession(new FakeTracer(_kernel));
                var handle = await session.CreateAsync(_programs.Fork.Path, [_programs.Fork.Path, "50"], new CreateOptions { StopAt = Rendezvous.Main });
                await session.SetBreakpointAsync(handle, "a.out`work", _ => { });
                session.Continue(handle);
                await _kernel.WaitUntilAsync(k => k.ChildrenOf(handle.Pid).Count > 0);
                return _kernel.ChildrenOf(handle.Pid)[0];
            },
            _kernel,
            seed: 4);

        Assert.DoesNotContain(_kernel.Log, line => line.Contains("untraced", StringComparison.Ordinal));
        Assert.True(!_kernel.Exists(child) || _kernel.TextIsOriginal(child));
    }

    [Fact]
    [Trait("Spec", "S16")]
    [Trait("Spec", "S13")]
    [Trait("Spec", "S9")]
    public void A_victim_whose_wait_failed_is_let_go_without_traps_so_the_child_it_forks_gets_clean_text()
    {
        // The 4th wait, the one after main's breakpoint: it fails while the victim runs on, every trap planted, to its
        // fork (as in simulation seed 7074 once ControlLoop.FinishAsync always yields).
        _kernel.Faults = new FaultPlan().FailAt(FakeOperation.WaitForStop, 4, Errno.ESRCH);
        var pid = _kernel.Spawn(_programs.Fork, _programs.Fork.Path, "1000");

        var (lost, childText) = DeterministicScheduler.Run(
            async () =>
            {
                await using var session = new ProcHexSession(new FakeTracer(_kernel));
                var handle = await session.GrabAsync(pid);
                session.Continue(handle);
                var lost = await session.WaitForNotificationAsync(TimeSpan.FromSeconds(10));
                await _kernel.WaitUntilAsync(k => k.Observe(pid).Stopped); // at its fork, for a tracer no longer listening
                await session.ReleaseAsync(handle);
                await _kernel.WaitUntilAsync(k => k.ChildrenOf(pid).Count > 0);
                return (lost, _kernel.TextDifferences(_kernel.ChildrenOf(pid)[0]));
            },
            _kernel,
            seed: 6);

        Assert.Equal(NotificationKind.Lost, lost?.Kind);
        Assert.Contains($"pid {pid}: released (Run)", _kernel.Log);
        Assert.Empty(childText);
        Assert.True(_kernel.TextIsOriginal(pid));
    }

    /// <summary>
    /// Simulation seed 12797: the fake let a grab of a vfork parent complete while its child, stopped before its exec,
    /// still ran in the parent's memory; the core planted its traps there, the parent was killed, and the child kept
    /// them. On Linux the thread waiting in vfork stops only once the child execs or exits, and the grab waits for it.
    /// </summary>
    [Fact]
    [Trait("Spec", "S3")]
    [Trait("Spec", "S16")]
    public void A_grab_of_a_vfork_parent_waits_for_the_child_to_exec_so_no_trap_is_left_in_the_child()
    {
        var pid = _kernel.Spawn(_programs.Vfork, "3");
        while (_kernel.ChildrenOf(pid).Count == 0)
        {
            Assert.True(_kernel.Step());
        }

        var child = _kernel.ChildrenOf(pid)[0];
        _kernel.SendSignal(child, Signals.Stop);
        var time = new SimulatedTime();

        DeterministicScheduler.Run(
            async () =>
            {
                await using var session = new ProcHexSession(new FakeTracer(_kernel), new ProcHexOptions { TimeProvider = time });
                var grab = session.GrabAsync(pid);
                await Task.Delay(TimeSpan.FromMilliseconds(50), time);
                Assert.False(grab.IsCompleted, "the grab completed while the parent waited in vfork for its stopped child");

                // The rest of the world runs meanwhile.
                var other = await session.CreateAsync(_programs.Loop.Path, [_programs.Loop.Path, "2"]);
                session.Continue(other);
                Assert.Equal(NotificationKind.Exited, (await session.WaitForNotificationAsync(TimeSpan.FromSeconds(5)))?.Kind);
                Assert.False(grab.IsCompleted);
                Assert.True(_kernel.TextIsOriginal(child));

                _kernel.ContinueByOthers(child);
                var handle = await grab;
                Assert.Same(_programs.Loop, _kernel.ImageOf(child));
                session.Continue(handle);
                await _kernel.WaitStepsAsync(3);
                _kernel.Kill(pid);
                Assert.True(!_kernel.Exists(child) || _kernel.TextIsOriginal(child));
            },
            _kernel,
            new DeterministicSchedulerOptions { Seed = 7, Time = time, ForeignWorkGrace = TimeSpan.FromMilliseconds(50) });
    }
}
