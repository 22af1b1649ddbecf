using Microsoft.Extensions.Logging.Abstractions;
using NSubstitute;
using ProcHex.Breakpoints;
using ProcHex.Ports;
using ProcHex.Core.Tests.Ports;
using ProcHex.Victims;

namespace ProcHex.Core.Tests;

/// <summary>
/// Issue 16 item 2, "the lifecycle is the truth": held by others, lost by a failed wait, releasing, idle and a fork
/// under way are states of the machine, and what the control loop and destroy decide by follows from them.
/// </summary>
[Trait("Issue", "16.2")]
public sealed class LifecycleTruthTests
{
    private const ulong Address = 0x401000;

    /// <summary>Every state a victim can be in (the superstates never are).</summary>
    internal static IEnumerable<LifecycleState> CurrentStates =>
        Enum.GetValues<LifecycleState>().Where(s => s is not (LifecycleState.SettingUp or LifecycleState.Live or LifecycleState.Forking));

    /// <summary>A lifecycle in <paramref name="state"/> whose breakpoint set has one trap planted.</summary>
    internal static (VictimLifecycle Lifecycle, ITracedProcess Process) WithOnePlantedTrap(LifecycleState state)
    {
        var (lifecycle, process, _) = WithTraps(state);
        return (lifecycle, process);
    }

    private static (VictimLifecycle Lifecycle, ITracedProcess Process, BreakpointSet Breakpoints) WithTraps(LifecycleState state)
    {
        var process = Substitute.For<ITracedProcess>();
        process.PlantBreakpoint(Arg.Any<ulong>()).Returns(ci => new BreakpointPatch(ci.Arg<ulong>(), 0x55, 1));
        var breakpoints = new BreakpointSet(process, NullLogger.Instance);
        breakpoints.Add(Address, SiteRoles.Main, client: null, plant: true);
        return (new VictimLifecycle(state, 7, breakpoints: breakpoints), process, breakpoints);
    }

    [Theory]
    [Trait("Spec", "S20")]
    [Trait("Spec", "S9")]
    [InlineData(true, ReleaseMode.Kill)]
    [InlineData(false, ReleaseMode.Run)]
    public void Stopped_by_others_is_a_state_and_the_release_mode_follows_from_it(bool created, ReleaseMode ours)
    {
        var victim = new Victim(Substitute.For<ITracedProcess>(), GrabMode.Control, created, StopEvents.None, NullLogger.Instance);
        victim.Lifecycle.Fire(VictimTrigger.Resume);
        Assert.Equal(ours, victim.ReleaseMode);

        victim.Lifecycle.Fire(VictimTrigger.StopByOthers);
        Assert.Equal(VictimState.HeldByOthers, victim.State);
        Assert.Equal(ReleaseMode.Hang, victim.ReleaseMode);

        victim.Lifecycle.Fire(VictimTrigger.BeginRelease);
        Assert.Equal(LifecycleState.ReleasingHeldByOthers, victim.Lifecycle.Current);
        Assert.Equal(VictimState.Releasing, victim.State);
        Assert.Equal(ReleaseMode.Hang, victim.ReleaseMode);

        // A SIGCONT that raced the release: nobody holds it any more, so it is killed or left running, not hung.
        victim.Lifecycle.Fire(VictimTrigger.ResumeByOthers);
        Assert.Equal(LifecycleState.Releasing, victim.Lifecycle.Current);
        Assert.Equal(ours, victim.ReleaseMode);
    }

    [Fact]
    [Trait("Spec", "S16")]
    public void A_failed_wait_loses_the_victim_with_its_text_in_reach_a_kernel_loss_without()
    {
        var failed = new VictimLifecycle(LifecycleState.Running, 7);
        var taken = new VictimLifecycle(LifecycleState.Running, 7);

        failed.Fire(VictimTrigger.WaitFailed);
        taken.Fire(VictimTrigger.LoseControl);

        Assert.Equal((LifecycleState.LostByFailedWait, VictimState.Lost, true), (failed.Current, failed.State, failed.TextInReach));
        Assert.Equal((LifecycleState.Lost, VictimState.Lost, false), (taken.Current, taken.State, taken.TextInReach));
        Assert.True(failed.IsOver);
    }

    [Fact]
    [Trait("Spec", "S16")]
    [Trait("Spec", "S19")]
    public async Task The_control_loop_moves_a_victim_whose_wait_failed_to_lost_by_failed_wait_and_restores_its_text()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var handle = await RunningAsync(session, tracer, _ => { });
        var script = tracer.Last;

        script.FailWait(new TracerException("Input/output error", TracerErrorKind.Failed, 5));
        var lost = await session.WaitForNotificationAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(NotificationKind.Lost, lost?.Kind);
        Assert.Equal(LifecycleState.LostByFailedWait, handle.Victim.Lifecycle.Current);
        Assert.Equal(VictimState.Lost, handle.State);
        
        // Once parking idle at create, once more when the loop ends: the victim runs on, traced, with main planted.
        script.Process.Received(2).RemoveBreakpoint(Arg.Is<BreakpointPatch>(p => p.Address == PortScript.MainAddress));
    }

    [Fact]
    [Trait("Spec", "S10")]
    public void Idle_takes_every_trap_out_on_entry_and_puts_them_back_on_exit()
    {
        var (lifecycle, process, breakpoints) = WithTraps(LifecycleState.Stopped);

        lifecycle.Fire(VictimTrigger.Park);
        Assert.False(breakpoints.IsActive(Address));
        Assert.False(lifecycle.MayWriteTraps);
        process.Received(1).RemoveBreakpoint(Arg.Any<BreakpointPatch>());

        lifecycle.Fire(VictimTrigger.Continue);
        Assert.True(breakpoints.IsActive(Address));
        Assert.True(lifecycle.MayWriteTraps);
        process.Received(2).PlantBreakpoint(Address);
    }

    [Fact]
    [Trait("Spec", "S13")]
    public void Through_a_fork_every_trap_stays_out_until_the_fork_ends()
    {
        var (lifecycle, _, breakpoints) = WithTraps(LifecycleState.Stopped);

        lifecycle.Fire(VictimTrigger.ForkStart);
        lifecycle.Fire(VictimTrigger.Resume);
        lifecycle.Fire(VictimTrigger.StopByOthers);
        Assert.Equal((LifecycleState.ForkHeldByOthers, true), (lifecycle.Current, lifecycle.IsHeldByOthers));
        lifecycle.Fire(VictimTrigger.ResumeByOthers);
        Assert.Equal(LifecycleState.ForkStopped, lifecycle.Current);
        Assert.Equal(VictimState.Stopped, lifecycle.State);
        Assert.False(lifecycle.MayWriteTraps);
        Assert.False(breakpoints.IsActive(Address));

        lifecycle.Fire(VictimTrigger.ForkEnd);
        Assert.Equal(LifecycleState.Stopped, lifecycle.Current);
        Assert.True(breakpoints.IsActive(Address));
    }

    [Fact]
    [Trait("Spec", "S9")]
    public void Released_from_idle_no_trap_is_written_again()
    {
        var (lifecycle, process, breakpoints) = WithTraps(LifecycleState.Stopped);
        lifecycle.Fire(VictimTrigger.Park);

        lifecycle.Fire(VictimTrigger.BeginRelease);
        lifecycle.Fire(VictimTrigger.Continue); // the woken loop's continue is moot now
        lifecycle.Fire(VictimTrigger.ForkEnd);

        Assert.Equal(LifecycleState.Releasing, lifecycle.Current);
        Assert.False(lifecycle.MayWriteTraps);
        Assert.True(lifecycle.TextInReach);
        Assert.False(breakpoints.IsActive(Address));
        process.Received(1).PlantBreakpoint(Address);
    }

    [Fact]
    [Trait("Spec", "S9")]
    [Trait("Spec", "S21")]
    public async Task Once_the_release_begins_a_new_breakpoint_is_refused()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        Task? release = null;
        Task<ClientBreakpoint>? late = null;
        var seen = VictimState.Running;
        var handle = await RunningAsync(session, tracer, handle =>
        {
            // The handler runs under the victim lock: the release begins at once, and the lock is not released between.
            release = session.ReleaseAsync(handle);
            seen = handle.State;
            late = session.SetBreakpointAsync(handle, PortScript.MainAddress + 0x10, _ => { });
        });
        var script = tracer.Last;

        script.HitBreakpoint(PortScript.WorkAddress);
        await WaitUntil(() => release is not null);
        await release!;

        Assert.Equal(VictimState.Releasing, seen);
        await Assert.ThrowsAsync<InvalidHandleException>(() => late!);
        script.Process.DidNotReceive().PlantBreakpoint(PortScript.MainAddress + 0x10);
        Assert.Equal(VictimState.Released, handle.State);
    }

    /// <summary>
    /// A request that reaches the victim lock after the release is over is refused as released, like one during it
    /// (HostileInputTests' race met it once as a plain "the process is Released" error).
    /// </summary>
    [Theory]
    [InlineData(nameof(LifecycleState.Releasing), true)]
    [InlineData(nameof(LifecycleState.ReleasingHeldByOthers), true)]
    [InlineData(nameof(LifecycleState.Released), true)]
    [InlineData(nameof(LifecycleState.Running), false)]
    [InlineData(nameof(LifecycleState.HeldByOthers), false)]
    [InlineData(nameof(LifecycleState.Undead), false)]
    [Trait("Spec", "S8")]
    [Trait("Issue", "16.2")]
    public void A_release_has_begun_in_the_releasing_states_and_once_released(string state, bool begun) =>
        Assert.Equal(begun, new VictimLifecycle(Enum.Parse<LifecycleState>(state), 7).ReleaseBegun);

    /// <summary>A created victim, continued and running, with <paramref name="onWork"/> on a.out`work.</summary>
    private static async Task<ProcessHandle> RunningAsync(ProcHexSession session, TracerScript tracer, Action<ProcessHandle> onWork)
    {
        var handle = await session.CreateAsync("/bin/victim", ["victim"], new CreateOptions { StopAt = Rendezvous.Create });
        await session.SetBreakpointAsync(handle, PortScript.WorkAddress, _ => onWork(handle));
        session.Continue(handle);
        await tracer.Last.WaitForWaitsAsync(1);
        return handle;
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        for (var i = 0; i < 2000 && !condition(); i++)
        {
            await Task.Delay(5);
        }

        Assert.True(condition());
    }
}
