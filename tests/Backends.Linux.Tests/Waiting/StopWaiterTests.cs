using ProcHex.Ports;

// The tests drive the awaiter by hand, without a synchronization context: which thread runs the continuation is what
// they prove. Nothing blocks on a task that is not complete.
#pragma warning disable xUnit1030, xUnit1031

namespace ProcHex.Backends.Linux.Tests.Waiting;

/// <summary>
/// The control loop's move to the owner thread (AnswerStopsOnOwnerThread): its first wait begins off the owner, and the
/// owner may answer it before the loop's await has registered its continuation. That answer must still run the
/// continuation on the owner, not let the awaiter take it up on its own thread (seen once: 1 of 500 handlers ran on a
/// pool thread). Both orders of the race, made deterministic.
/// </summary>
public sealed class StopWaiterTests
{
    private static readonly StopEvent Hit = StopEvent.Stopped(StopReason.Breakpoint, 7, 0x1000);

    [Fact]
    [Trait("Spec", "S14")]
    public void An_answer_before_the_await_registered_is_handed_to_the_owner_and_runs_there()
    {
        var handedOver = new List<Action>();
        var waiter = new StopWaiter();
        var wait = waiter.Begin(handedOver.Add);

        Assert.True(waiter.TrySetResult(Hit, inline: true)); // the owner answers first
        Assert.False(wait.IsCompleted); // so the awaiter cannot take the stop on its own thread

        var awaiter = wait.ConfigureAwait(false).GetAwaiter();
        int? ranOn = null;
        StopEvent? got = null;
        awaiter.OnCompleted(() =>
        {
            ranOn = Environment.CurrentManagedThreadId;
            got = awaiter.GetResult();
        });
        Assert.Null(ranOn);
        var work = Assert.Single(handedOver);

        var owner = new Thread(() => work());
        owner.Start();
        owner.Join();

        Assert.Equal(owner.ManagedThreadId, ranOn);
        Assert.Equal(Hit, got);
    }

    [Fact]
    [Trait("Spec", "S14")]
    public void An_answer_after_the_await_registered_runs_the_continuation_on_the_answering_thread()
    {
        var handedOver = new List<Action>();
        var waiter = new StopWaiter();
        var wait = waiter.Begin(handedOver.Add);
        var awaiter = wait.ConfigureAwait(false).GetAwaiter();
        int? ranOn = null;
        awaiter.OnCompleted(() => ranOn = Environment.CurrentManagedThreadId);

        var owner = new Thread(() => waiter.TrySetResult(Hit, inline: true));
        owner.Start();
        owner.Join();

        Assert.Equal(owner.ManagedThreadId, ranOn);
        Assert.Empty(handedOver);
        Assert.Equal(Hit, awaiter.GetResult());
    }

    [Fact]
    [Trait("Spec", "S14")]
    public void A_wait_begun_on_the_owner_completes_at_once_when_answered_before_its_await()
    {
        var waiter = new StopWaiter();
        var wait = waiter.Begin();

        Assert.True(waiter.TrySetResult(Hit, inline: true));

        Assert.True(wait.IsCompleted);
        Assert.Equal(Hit, wait.Result);
    }
}
