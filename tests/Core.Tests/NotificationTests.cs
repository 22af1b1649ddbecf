using NSubstitute;
using ProcHex.Ports;
using ProcHex.Core.Tests.Ports;

namespace ProcHex.Core.Tests;

/// <summary>Death, loss and external stops (S19, S20).</summary>
public sealed class NotificationTests
{
    private static async Task<(ProcessHandle Handle, PortScript Script)> RunningAsync(ProcHexSession session, TracerScript tracer)
    {
        var handle = await session.CreateAsync("/bin/victim", ["victim"], new CreateOptions { StopAt = Rendezvous.Create });
        session.Continue(handle);
        await tracer.Last.WaitForWaitsAsync(1);
        return (handle, tracer.Last);
    }

    [Fact]
    [Trait("Spec", "S19")]
    public async Task Death_is_queued_once_in_order_and_wakes_a_waiting_client()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var (first, firstScript) = await RunningAsync(session, tracer);
        var (second, secondScript) = await RunningAsync(session, tracer);

        var waiting = session.WaitForNotificationAsync(TimeSpan.FromSeconds(10));
        firstScript.Exit(3);
        var note = await waiting;
        secondScript.Push(StopEvent.Lost(second.Pid, "exec of a set-id program"));

        Assert.NotNull(note);
        Assert.Equal((first.Pid, NotificationKind.Exited, 3), (note.Pid, note.Kind, note.Exit!.Value.Code));
        var lost = await session.WaitForNotificationAsync(TimeSpan.FromSeconds(10));
        Assert.Equal((second.Pid, NotificationKind.Lost, "exec of a set-id program"), (lost!.Pid, lost.Kind, lost.Message));
        Assert.Null(await session.WaitForNotificationAsync(TimeSpan.FromMilliseconds(50)));
        Assert.Equal(VictimState.Undead, first.State);
        Assert.Equal(VictimState.Lost, second.State);
    }

    [Fact]
    [Trait("Spec", "S19")]
    public async Task An_interrupted_wait_is_retried_and_a_failed_wait_is_a_notified_loss()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var (handle, script) = await RunningAsync(session, tracer);

        script.FailWait(new TracerException("Interrupted system call", TracerErrorKind.Interrupted, 4));
        await script.WaitForWaitsAsync(2);
        Assert.Equal(VictimState.Running, handle.State);

        script.FailWait(new TracerException("No child processes", TracerErrorKind.Gone, 10));
        var note = await session.WaitForNotificationAsync(TimeSpan.FromSeconds(10));

        Assert.Equal((handle.Pid, NotificationKind.Lost), (note!.Pid, note.Kind));
        Assert.Contains("No child processes", note.Message, StringComparison.Ordinal);
        Assert.Equal(VictimState.Lost, handle.State);
    }

    [Fact]
    [Trait("Spec", "S19")]
    public async Task A_notification_wait_gives_up_at_its_deadline_or_token_and_leaves_later_ones_queued()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var (_, script) = await RunningAsync(session, tracer);
        using var cts = new CancellationTokenSource();

        Assert.Null(await session.WaitForNotificationAsync(TimeSpan.Zero));
        Assert.Null(await session.WaitForNotificationAsync(TimeSpan.FromMilliseconds(20)));
        var canceled = session.WaitForNotificationAsync(Timeout.InfiniteTimeSpan, cts.Token);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => canceled);

        script.Exit(0);
        var note = await session.WaitForNotificationAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(NotificationKind.Exited, note!.Kind);
        Assert.Equal(0, session.PendingNotifications);
    }

    [Fact]
    [Trait("Spec", "S18")]
    [Trait("Spec", "S19")]
    public async Task A_milestone_handler_that_throws_becomes_an_error_notification_and_the_victim_runs_on()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var seen = new List<MilestoneKind>();
        session.MilestoneReached = m =>
        {
            seen.Add(m.Kind);
            throw new InvalidOperationException("probe creation failed");
        };
        var (handle, script) = await RunningAsync(session, tracer);

        script.HitBreakpoint(PortScript.MainAddress);
        var note = await session.WaitForNotificationAsync(TimeSpan.FromSeconds(10));

        Assert.Equal([MilestoneKind.Main], seen);
        Assert.Equal((NotificationKind.Error, "probe creation failed"), (note!.Kind, note.Message));
        await script.WaitForWaitsAsync(2);
        Assert.Equal(VictimState.Running, handle.State);
    }

    [Fact]
    [Trait("Spec", "S19")]
    public async Task Notifications_stream_as_an_async_enumerable()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var (_, script) = await RunningAsync(session, tracer);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));

        script.Push(StopEvent.Exited(script.Pid, ExitStatus.FromSignal(11, coreDumped: true)));
        await foreach (var note in session.ReadNotificationsAsync(cts.Token))
        {
            Assert.Equal(11, note.Exit!.Value.Signal);
            return;
        }

        Assert.Fail("the stream ended without a notification");
    }

    [Fact]
    [Trait("Spec", "S19")]
    [Trait("Spec", "S9")]
    public async Task Destroy_purges_pending_notifications_of_its_victim()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var (handle, script) = await RunningAsync(session, tracer);
        script.Exit(0);
        await WaitUntil(() => session.PendingNotifications == 1);

        await session.ReleaseAsync(handle);

        Assert.Equal(0, session.PendingNotifications);
    }

    [Theory]
    [Trait("Spec", "S20")]
    [InlineData(StopReason.ForkStarting)]
    [InlineData(StopReason.VforkDone)]
    [InlineData(StopReason.Breakpoint)]
    [InlineData(StopReason.Signal)]
    public async Task A_stop_of_a_held_thread_while_others_hold_the_victim_is_answered_and_resumed_with_their_resume(StopReason reason)
    {
        // The backend reported someone else's stop, then a thread it had held while that stop gathered reported
        // something else (chaos seed 3: a vfork's end; linux simulation seed 67588: a breakpoint). The loop once
        // answered it with a resume the lifecycle refuses while held: the loop died and left the victim in a ptrace
        // stop. Now it is answered without a resume, and their resume's report resumes it.
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var (handle, script) = await RunningAsync(session, tracer);
        script.Push(StopEvent.Stopped(StopReason.StoppedByOthers, script.Pid));
        await script.WaitForWaitsAsync(2);
        Assert.Equal(VictimState.HeldByOthers, handle.State);

        script.Push(StopEvent.Stopped(reason, script.Pid, 0x401000));
        await script.WaitForWaitsAsync(3);

        Assert.Equal(VictimState.HeldByOthers, handle.State);
        script.Process.Received(1).Resume(); // only the one after setup

        script.Push(StopEvent.Stopped(StopReason.ResumedByOthers, script.Pid));
        await script.WaitForWaitsAsync(4);
        Assert.Equal(VictimState.Running, handle.State);
        script.Process.Received(2).Resume();

        await session.ReleaseAsync(handle);
        script.Process.Received(1).Release(ReleaseMode.Kill);
    }

    [Fact]
    [Trait("Spec", "S20")]
    public async Task A_victim_stopped_by_others_is_left_to_them_and_released_hanging()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var (handle, script) = await RunningAsync(session, tracer);

        script.Push(StopEvent.Stopped(StopReason.StoppedByOthers, script.Pid));
        await script.WaitForWaitsAsync(2);

        Assert.Equal(VictimState.HeldByOthers, handle.State);
        script.Process.Received(1).AwaitExternalResume();
        script.Process.Received(1).Resume(); // only the one after setup

        await session.ReleaseAsync(handle);
        script.Process.Received(1).Release(ReleaseMode.Hang);
    }

    [Fact]
    [Trait("Spec", "S20")]
    public async Task Resumed_by_others_the_victim_runs_under_control_again()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var (handle, script) = await RunningAsync(session, tracer);

        script.Push(StopEvent.Stopped(StopReason.StoppedByOthers, script.Pid));
        script.Push(StopEvent.Stopped(StopReason.ResumedByOthers, script.Pid));
        await script.WaitForWaitsAsync(3);

        Assert.Equal(VictimState.Running, handle.State);
        await session.ReleaseAsync(handle);
        script.Process.Received(1).Release(ReleaseMode.Kill);
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
