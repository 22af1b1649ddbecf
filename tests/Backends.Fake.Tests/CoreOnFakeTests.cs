using ProcHex.Backends.Fake;
using ProcHex.Ports;

namespace ProcHex.Tests;

/// <summary>Smoke tests of the real session over the fake: the ports behave the way the core relies on.</summary>
public class CoreOnFakeTests
{
    [Fact]
    [Trait("Spec", "S1")]
    [Trait("Spec", "S14")]
    public void A_created_victim_counts_every_hit_and_is_reaped_after_it_exits()
    {
        var kit = new TestKit();
        var (hits, exit) = RunCreate(kit, seed: 11);

        Assert.Equal(5, hits);
        Assert.Equal(ExitStatus.FromCode(0), exit);
        Assert.Empty(kit.Kernel.Pids);
    }

    [Fact]
    public void The_same_seed_replays_the_session_exactly()
    {
        var first = new TestKit();
        var second = new TestKit();

        RunCreate(first, seed: 5);
        RunCreate(second, seed: 5);

        Assert.Equal(first.Kernel.Log, second.Kernel.Log);
    }

    [Fact]
    [Trait("Spec", "S3")]
    [Trait("Spec", "S9")]
    public void A_grabbed_victim_is_left_running_with_its_text_restored()
    {
        var kit = new TestKit();
        var pid = kit.Kernel.Spawn(kit.Programs.Sleeper);

        var hits = DeterministicScheduler.Run(
            async () =>
            {
                await using var session = new ProcHexSession(kit.Tracer);
                var handle = await session.GrabAsync(pid);
                Assert.Null(handle.Rendezvous);
                var count = 0;
                var threeHits = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                await session.SetBreakpointAsync(handle, "a.out`work", _ =>
                {
                    if (++count == 3)
                    {
                        threeHits.TrySetResult();
                    }
                });
                session.Continue(handle);
                await threeHits.Task;
                await session.ReleaseAsync(handle);
                return count;
            },
            kit.Kernel,
            seed: 2);

        Assert.True(hits >= 3);
        Assert.True(kit.Kernel.TextIsOriginal(pid));
        Assert.Equal(new FakeObservation(true, false, false, false), kit.Kernel.Observe(pid));
    }

    private static (int Hits, ExitStatus? Exit) RunCreate(TestKit kit, int seed) =>
        DeterministicScheduler.Run(
            async () =>
            {
                await using var session = new ProcHexSession(kit.Tracer);
                var handle = await session.CreateAsync(kit.Programs.Loop.Path, [kit.Programs.Loop.Path, "5"]);
                var hits = 0;
                await session.SetBreakpointAsync(handle, "a.out`work", _ => hits++);
                session.Continue(handle);
                var notification = await session.WaitForNotificationAsync(Timeout.InfiniteTimeSpan);
                return (hits, notification?.Exit);
            },
            kit.Kernel,
            seed);
}
