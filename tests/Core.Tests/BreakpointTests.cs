using NSubstitute;
using ProcHex.Ports;
using ProcHex.Core.Tests.Ports;

namespace ProcHex.Core.Tests;

/// <summary>Breakpoint bookkeeping and the event loop's answers to stops (S13–S16).</summary>
public sealed class BreakpointTests
{
    private static async Task<(ProcHexSession Session, ProcessHandle Handle, PortScript Script)> RunningVictimAsync(TracerScript tracer)
    {
        var session = tracer.Session();
        var handle = await session.CreateAsync("/bin/victim", ["victim"], new CreateOptions { StopAt = Rendezvous.Create });
        session.Continue(handle);
        await tracer.Last.WaitForWaitsAsync(1);
        return (session, handle, tracer.Last);
    }

    [Fact]
    [Trait("Spec", "S14")]
    public async Task Hit_counts_runs_the_handler_then_steps_over_keeping_the_breakpoint()
    {
        var tracer = new TracerScript();
        var (session, handle, script) = await RunningVictimAsync(tracer);
        await using var _ = session;
        var hits = new List<BreakpointHit>();
        var bp = await session.SetBreakpointAsync(handle, "a.out`work", hits.Add);

        script.HitBreakpoint(PortScript.WorkAddress, tid: 101);
        script.HitBreakpoint(PortScript.WorkAddress, tid: 102);
        await script.WaitForWaitsAsync(3);

        Assert.Equal([101, 102], hits.Select(h => h.ThreadId));
        Assert.Equal([1L, 2L], hits.Select(h => h.HitCount));
        Assert.Equal(2, bp.Hits);
        Assert.True(bp.IsActive);
        // Each hit is stepped over on the thread that took it (the port is told which, never left to guess).
        script.Process.Received(1).StepOverBreakpoint(101, Arg.Is<BreakpointPatch>(p => p.Address == PortScript.WorkAddress));
        script.Process.Received(1).StepOverBreakpoint(102, Arg.Is<BreakpointPatch>(p => p.Address == PortScript.WorkAddress));
        script.Process.DidNotReceive().RemoveBreakpoint(Arg.Is<BreakpointPatch>(p => p.Address == PortScript.WorkAddress));
    }

    [Fact]
    [Trait("Spec", "S14")]
    public async Task Spurious_wakeup_does_nothing_but_resume()
    {
        var tracer = new TracerScript();
        var (session, handle, script) = await RunningVictimAsync(tracer);
        await using var _ = session;

        script.HitBreakpoint(0xdead);
        await script.WaitForWaitsAsync(2);

        script.Process.DidNotReceiveWithAnyArgs().StepOverBreakpoint(default, default);
        script.Process.Received(2).Resume();
        Assert.Equal(VictimState.Running, handle.State);
    }

    [Fact]
    [Trait("Spec", "S14")]
    public async Task A_throwing_handler_does_not_stop_the_control_loop()
    {
        var tracer = new TracerScript();
        var (session, handle, script) = await RunningVictimAsync(tracer);
        await using var _ = session;
        await session.SetBreakpointAsync(handle, PortScript.WorkAddress, _ => throw new InvalidOperationException("client bug"));

        script.HitBreakpoint(PortScript.WorkAddress);
        await script.WaitForWaitsAsync(2);

        script.Process.Received(1).StepOverBreakpoint(Arg.Any<int>(), Arg.Is<BreakpointPatch>(p => p.Address == PortScript.WorkAddress));
        Assert.Equal(VictimState.Running, handle.State);
    }

    [Fact]
    [Trait("Spec", "S14")]
    public async Task A_handler_that_removes_its_breakpoint_gets_no_step_over()
    {
        var tracer = new TracerScript();
        var (session, handle, script) = await RunningVictimAsync(tracer);
        await using var _ = session;
        ClientBreakpoint? bp = null;
        bp = await session.SetBreakpointAsync(handle, PortScript.WorkAddress, _ => session.RemoveBreakpointAsync(bp!).GetAwaiter().GetResult());

        script.HitBreakpoint(PortScript.WorkAddress);
        await script.WaitForWaitsAsync(2);

        Assert.False(bp.IsPlanted);
        script.Process.Received(1).RemoveBreakpoint(Arg.Is<BreakpointPatch>(p => p.Address == PortScript.WorkAddress));
        script.Process.DidNotReceive().StepOverBreakpoint(Arg.Any<int>(), Arg.Is<BreakpointPatch>(p => p.Address == PortScript.WorkAddress));
    }

    [Fact]
    [Trait("Spec", "S15")]
    public async Task A_breakpoint_that_cannot_be_written_is_recorded_inactive_and_retried_on_enable()
    {
        var tracer = new TracerScript();
        var (session, handle, script) = await RunningVictimAsync(tracer);
        await using var _ = session;
        var writable = false;
        script.Process.PlantBreakpoint(PortScript.WorkAddress).Returns(_ =>
            writable ? new BreakpointPatch(PortScript.WorkAddress, 0x90, 1) : throw new TracerException("I/O error", TracerErrorKind.BadAddress, 5));

        var bp = await session.SetBreakpointAsync(handle, PortScript.WorkAddress, _ => { });
        Assert.True(bp.IsPlanted);
        Assert.False(bp.IsActive);

        // The next enable (after a fork completes) retries it, and now it can be written.
        writable = true;
        script.Push(StopEvent.Stopped(StopReason.ForkDone, script.Pid));
        await script.WaitForWaitsAsync(2);

        Assert.True(bp.IsActive);
    }

    [Fact]
    [Trait("Spec", "S15")]
    public async Task An_interrupted_write_is_retried_not_failed()
    {
        var tracer = new TracerScript();
        var (session, handle, script) = await RunningVictimAsync(tracer);
        await using var _ = session;
        var calls = 0;
        script.Process.PlantBreakpoint(PortScript.WorkAddress).Returns(_ =>
            ++calls < 3 ? throw new TracerException("interrupted", TracerErrorKind.Interrupted, 4) : new BreakpointPatch(PortScript.WorkAddress, 0x90, 1));

        var bp = await session.SetBreakpointAsync(handle, PortScript.WorkAddress, _ => { });

        Assert.True(bp.IsActive);
        Assert.Equal(3, calls);
    }

    [Fact]
    [Trait("Spec", "S16")]
    public async Task Removing_all_restores_text_only_for_active_breakpoints_of_a_live_victim()
    {
        var tracer = new TracerScript();
        var (session, handle, script) = await RunningVictimAsync(tracer);
        script.Process.PlantBreakpoint(0x5000).Returns(_ => throw new TracerException("I/O error", TracerErrorKind.BadAddress, 5));
        await session.SetBreakpointAsync(handle, 0x5000, _ => { });
        await session.SetBreakpointAsync(handle, PortScript.WorkAddress, _ => { });

        await session.ReleaseAsync(handle);

        script.Process.Received(1).RemoveBreakpoint(Arg.Is<BreakpointPatch>(p => p.Address == PortScript.WorkAddress));
        script.Process.DidNotReceive().RemoveBreakpoint(Arg.Is<BreakpointPatch>(p => p.Address == 0x5000));
        await session.DisposeAsync();
    }

    [Fact]
    [Trait("Spec", "S16")]
    public async Task A_dead_victims_text_is_not_touched()
    {
        var tracer = new TracerScript();
        var (session, handle, script) = await RunningVictimAsync(tracer);
        await using var _ = session;
        await session.SetBreakpointAsync(handle, PortScript.WorkAddress, _ => { });
        script.Process.ClearReceivedCalls(); // forget the removals made while it idled at the rendezvous

        script.Exit(0);
        await session.WaitForNotificationAsync(TimeSpan.FromSeconds(10));

        script.Process.DidNotReceiveWithAnyArgs().RemoveBreakpoint(default);
        Assert.Equal(VictimState.Undead, handle.State);
    }

    [Fact]
    [Trait("Spec", "S13")]
    public async Task Fork_takes_breakpoints_out_while_it_runs_and_puts_them_back_when_done()
    {
        var tracer = new TracerScript();
        var (session, handle, script) = await RunningVictimAsync(tracer);
        await using var _ = session;
        var bp = await session.SetBreakpointAsync(handle, PortScript.WorkAddress, _ => { });

        script.Push(StopEvent.Stopped(StopReason.ForkStarting, script.Pid));
        await script.WaitForWaitsAsync(2);
        Assert.False(bp.IsActive);
        Assert.False(handle.Victim.Breakpoints.IsActive(PortScript.MainAddress));

        script.Push(StopEvent.Stopped(StopReason.VforkDone, script.Pid));
        await script.WaitForWaitsAsync(3);
        Assert.True(bp.IsActive);
        Assert.True(handle.Victim.Breakpoints.IsActive(PortScript.MainAddress));
    }

    [Fact]
    [Trait("Spec", "S13")]
    public async Task Exec_drops_every_breakpoint_through_the_backend_and_replants_main()
    {
        var tracer = new TracerScript();
        var (session, handle, script) = await RunningVictimAsync(tracer);
        await using var _ = session;
        var bp = await session.SetBreakpointAsync(handle, PortScript.WorkAddress, _ => { });
        script.Process.ClearReceivedCalls();

        script.Push(StopEvent.Stopped(StopReason.ExecDone, script.Pid));
        await script.WaitForWaitsAsync(2);

        // The backend writes nothing for a patch from the old image (port contract); one a client planted into the
        // new image before the loop saw the exec (found by the simulation, seed 1032) is restored.
        script.Process.Received(1).RemoveBreakpoint(Arg.Is<BreakpointPatch>(p => p.Address == PortScript.WorkAddress));
        script.Symbols.Received(1).Reset();
        script.Process.Received(1).PlantBreakpoint(PortScript.MainAddress);
        Assert.False(bp.IsPlanted);
        Assert.Equal(VictimState.Running, handle.State);
    }

    [Fact]
    [Trait("Spec", "S13")]
    public async Task Signal_stops_are_resumed_so_the_backend_delivers_them()
    {
        var tracer = new TracerScript();
        var (session, handle, script) = await RunningVictimAsync(tracer);
        await using var _ = session;

        script.Push(StopEvent.Stopped(StopReason.Signal, script.Pid));
        script.Push(StopEvent.Stopped(StopReason.SingleStep, script.Pid));
        await script.WaitForWaitsAsync(3);

        script.Process.Received(3).Resume();
        Assert.Equal(VictimState.Running, handle.State);
    }

    [Fact]
    [Trait("Spec", "S14")]
    [Trait("Spec", "S21")]
    public async Task IsActive_read_in_a_handler_does_not_wait_for_the_lock_its_loop_holds_and_sees_the_handlers_removal()
    {
        // Issue 16 item 5: IsActive reads under the victim lock; the loop holds it while handlers run.
        var tracer = new TracerScript();
        var (session, handle, script) = await RunningVictimAsync(tracer);
        await using var _ = session;
        var seen = new List<bool>();
        ClientBreakpoint? bp = null;
        bp = await session.SetBreakpointAsync(handle, PortScript.WorkAddress, _ =>
        {
            seen.Add(bp!.IsActive);
            session.RemoveBreakpointAsync(bp).GetAwaiter().GetResult();
            seen.Add(bp.IsActive);
        });

        script.HitBreakpoint(PortScript.WorkAddress);
        await script.WaitForWaitsAsync(2); // a handler blocked on the lock would keep the loop from its next wait

        Assert.Equal([true, false], seen);
        Assert.False(bp.IsActive);
    }

    [Fact]
    [Trait("Spec", "S14")]
    [Trait("Spec", "S21")]
    public async Task IsActive_read_on_another_flow_waits_for_the_loop_and_sees_a_removal_made_under_the_lock_whole()
    {
        // Issue 16 item 5: while the loop runs a handler that removes the breakpoint, a reader elsewhere must wait
        // for the lock (the hook says it is waiting) and then see the removal, not the state before or half of it.
        var tracer = new TracerScript();
        var (session, handle, script) = await RunningVictimAsync(tracer);
        await using var _ = session;
        var contended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        handle.Victim.Lock.Contended = () => contended.TrySetResult();
        Task<bool>? reader = null;
        var readerWaited = false;
        ClientBreakpoint? bp = null;
        bp = await session.SetBreakpointAsync(handle, PortScript.WorkAddress, _ =>
        {
            using (ExecutionContext.SuppressFlow())
            {
                // A flow of its own (not the loop's), as any other part of a tracer would be.
                reader = Task.Run(() => bp!.IsActive);
            }

            readerWaited = contended.Task.Wait(TimeSpan.FromSeconds(10));
            session.RemoveBreakpointAsync(bp!).GetAwaiter().GetResult();
        });

        script.HitBreakpoint(PortScript.WorkAddress);
        await script.WaitForWaitsAsync(2);

        Assert.True(readerWaited, "the reader did not wait for the lock the control loop held");
        Assert.False(await reader!.WaitAsync(TimeSpan.FromSeconds(10)));
        script.Process.Received(1).RemoveBreakpoint(Arg.Is<BreakpointPatch>(p => p.Address == PortScript.WorkAddress));
    }

    [Fact]
    [Trait("Spec", "S21")]
    public async Task IsActive_read_by_the_client_holding_the_lock_answers_at_once_and_others_wait_for_its_unlock()
    {
        // Issue 16 item 5: a client between Lock and Unlock reads without deadlocking on its own lock.
        var tracer = new TracerScript();
        var (session, handle, script) = await RunningVictimAsync(tracer);
        await using var _ = session;
        var bp = await session.SetBreakpointAsync(handle, PortScript.WorkAddress, _ => { });
        var contended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        handle.Victim.Lock.Contended = () => contended.TrySetResult();

        Task<bool> reader;
        bool readerWaited;
        using (await session.LockAsync(handle))
        {
            Assert.True(bp.IsActive);
            using (ExecutionContext.SuppressFlow())
            {
                reader = Task.Run(() => bp.IsActive);
            }

            readerWaited = await Task.WhenAny(contended.Task, Task.Delay(TimeSpan.FromSeconds(10))) == contended.Task;
            await session.RemoveBreakpointAsync(bp);
            Assert.False(bp.IsActive);
        }

        Assert.True(readerWaited, "the reader did not wait for the lock the client held");
        Assert.False(await reader.WaitAsync(TimeSpan.FromSeconds(10)));
    }
}
