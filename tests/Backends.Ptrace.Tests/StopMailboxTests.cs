using ProcHex.Ports;

namespace ProcHex.Backends.Ptrace.Tests;

/// <summary>
/// Issue 16 item 1 and the port's <c>WaitForStopAsync</c> contract: stops one at a time, in order, never lost; an
/// exit or a loss is final and repeats; stops of threads an exec destroyed are dropped.
/// </summary>
public sealed class StopMailboxTests
{
    private readonly StopMailbox<string?> _mailbox = new();

    [Fact]
    public void Stops_come_out_in_the_order_they_were_posted_with_their_tags()
    {
        Assert.True(_mailbox.Post(StopEvent.Stopped(StopReason.Breakpoint, 11, 0x1000), "t11"));
        Assert.True(_mailbox.Post(StopEvent.Stopped(StopReason.ForkDone, 12, 0), "t12"));

        Assert.True(_mailbox.TryDequeue(out var first, out var firstTag));
        Assert.True(_mailbox.TryDequeue(out var second, out var secondTag));
        Assert.False(_mailbox.TryDequeue(out _, out _));

        Assert.Equal((StopReason.Breakpoint, 11, "t11"), (first.Reason, first.ThreadId, firstTag));
        Assert.Equal((StopReason.ForkDone, 12, "t12"), (second.Reason, second.ThreadId, secondTag));
    }

    [Fact]
    public void An_exit_is_final_nothing_after_it_counts_and_it_is_taken_again_and_again()
    {
        var exit = StopEvent.Exited(100, ExitStatus.FromCode(3));
        Assert.True(_mailbox.Post(StopEvent.Stopped(StopReason.Signal, 100, 0), null));
        Assert.True(_mailbox.Post(exit, null));
        Assert.False(_mailbox.Post(StopEvent.Stopped(StopReason.Interrupted, 100, 0), null));

        Assert.True(_mailbox.TryTake(out var stop));
        Assert.Equal(StopReason.Signal, stop.Reason);
        for (var i = 0; i < 3; i++)
        {
            Assert.True(_mailbox.TryTake(out stop));
            Assert.Equal(StopKind.Exited, stop.Kind);
        }

        Assert.Equal(exit, _mailbox.Final);
        Assert.Equal(0, _mailbox.Count);
    }

    [Fact]
    public void An_empty_mailbox_has_nothing_to_take()
    {
        Assert.False(_mailbox.TryTake(out _));
        Assert.Null(_mailbox.Final);
    }

    [Fact]
    public void Holds_tells_whether_a_stop_for_a_reason_waits()
    {
        Assert.False(_mailbox.Holds(StopReason.Interrupted));
        _ = _mailbox.Post(StopEvent.Stopped(StopReason.Interrupted, 5, 0), null);

        Assert.True(_mailbox.Holds(StopReason.Interrupted));
        Assert.False(_mailbox.Holds(StopReason.Breakpoint));
    }

    [Fact]
    public void RemoveWhere_drops_the_stops_of_destroyed_threads_and_keeps_the_rest_in_order()
    {
        _ = _mailbox.Post(StopEvent.Stopped(StopReason.Breakpoint, 11, 0x1000), "t11");
        _ = _mailbox.Post(StopEvent.Stopped(StopReason.StoppedByOthers, 100, 0), null);
        _ = _mailbox.Post(StopEvent.Stopped(StopReason.Breakpoint, 12, 0x1000), "t12");
        _ = _mailbox.Post(StopEvent.Stopped(StopReason.ResumedByOthers, 100, 0), null);
        var dropped = new List<string?>();

        _mailbox.RemoveWhere(tag => tag is not null, dropped.Add);

        Assert.Equal(["t11", "t12"], dropped);
        Assert.True(_mailbox.TryTake(out var a));
        Assert.True(_mailbox.TryTake(out var b));
        Assert.False(_mailbox.TryTake(out _));
        Assert.Equal([StopReason.StoppedByOthers, StopReason.ResumedByOthers], new[] { a.Reason, b.Reason });
    }

    [Fact]
    public async Task NextArrival_completes_at_the_next_post_only()
    {
        var arrival = _mailbox.NextArrival();
        Assert.False(arrival.IsCompleted);

        _ = _mailbox.Post(StopEvent.Stopped(StopReason.Interrupted, 5, 0), null);

        await arrival.WaitAsync(TimeSpan.FromMinutes(1));
        Assert.False(_mailbox.NextArrival().IsCompleted);
    }
}
