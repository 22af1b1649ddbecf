using ProcHex.Ports;

namespace ProcHex.Backends.Fake.Tests;

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
    [Trait("Issue", "22")]
    public void Item1_every_create_option_reaches_the_backend_as_given_with_argv0_in_place_of_the_first_argument()
    {
        var kit = new TestKit();
        var limits = new Dictionary<ResourceLimit, ResourceLimitValue>
        {
            [ResourceLimit.CoreFileSize] = ResourceLimitValue.Both(0),
            [ResourceLimit.OpenFiles] = new(256, 4096),
        };
        var options = new CreateOptions
        {
            WorkingDirectory = "/srv",
            StandardInput = StdioTarget.File("/etc/input"),
            StandardOutput = StdioTarget.File("/var/log/out", append: true),
            StandardError = StdioTarget.Null,
            DisableAslr = true,
            ResourceLimits = limits,
            Argv0 = "renamed",
        };

        var request = DeterministicScheduler.Run(
            async () =>
            {
                await using var session = new ProcHexSession(kit.Tracer);
                var handle = await session.CreateAsync(kit.Programs.Loop.Path, [kit.Programs.Loop.Path, "1"], options);
                Assert.Null(handle.StandardOutput);
                return kit.Kernel.StartRequestOf(handle.Pid)!;
            },
            kit.Kernel,
            seed: 3);

        Assert.Equal(["renamed", "1"], request.Arguments);
        Assert.Equal("/srv", request.WorkingDirectory);
        Assert.Equal(StdioTarget.File("/etc/input"), request.StandardInput);
        Assert.Equal(StdioTarget.File("/var/log/out", append: true), request.StandardOutput);
        Assert.Equal(StdioTarget.Null, request.StandardError);
        Assert.True(request.DisableAslr);
        Assert.Same(limits, request.ResourceLimits);
        Assert.Equal(
            ["working directory /srv", "standard input file /etc/input", "standard output file /var/log/out (append)", "standard error null", "ASLR off", "resource limit CoreFileSize", "resource limit OpenFiles"],
            request.RequestedOptions);
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
