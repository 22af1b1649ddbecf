using CsCheck;
using ProcHex.Ports;

namespace ProcHex.Backends.Fake.Tests;

/// <summary>The usage the fake's documentation shows, kept compiling and true.</summary>
public class ExampleTests
{
    [Fact]
    public void A_hand_built_image_counts_its_calls_under_the_deterministic_scheduler()
    {
        var image = new FakeImageBuilder("/bin/worker")
            .Function("main")
            .Function("work", counts: "calls")
            .Global("calls")
            .Program(args => [Steps.Loop(int.Parse(args[1]), Steps.Call("work")), Steps.Exit(0)])
            .Build();
        var kernel = new FakeKernel().Register(image);
        var tracer = new FakeTracer(kernel);

        var hits = DeterministicScheduler.Run(
            async () =>
            {
                var process = await tracer.CreateAsync(new ProcessStartRequest("/bin/worker", ["worker", "5"]), default);
                process.BeginControl();
                process.Symbols.TryLookup("a.out", "work", out var work);
                var patch = process.PlantBreakpoint(work);
                process.Resume();
                var count = 0;
                while (await process.WaitForStopAsync(default) is { Kind: StopKind.Stopped } stop)
                {
                    count++;
                    process.StepOverBreakpoint(stop.ThreadId, patch);
                    process.Resume();
                }

                process.Release(ReleaseMode.Kill);
                return count;
            },
            kernel,
            seed: 1);

        Assert.Equal(5, hits);
        Assert.Empty(kernel.Pids);
    }

    [Fact]
    public void Any_seed_replays_exactly_and_never_leaves_a_breakpoint_in_a_live_victim()
    {
        Gen.Int[0, 1_000_000].Sample(
            seed =>
            {
                var first = Simulate(seed);
                var second = Simulate(seed);
                return first.SequenceEqual(second) && first[^1] == "clean";
            },
            iter: 25);
    }

    /// <summary>A small seeded workload: stop, plant, count, remove, release while the victim runs on.</summary>
    private static List<string> Simulate(int seed)
    {
        var kit = new TestKit();
        var pid = kit.Kernel.Spawn(kit.Programs.Sleeper);
        var clean = true;
        DeterministicScheduler.Run(
            async () =>
            {
                var process = kit.Grab(pid);
                process.BeginControl();
                var patch = process.PlantBreakpoint(TestKit.Address(process, "work"));
                process.Resume();
                for (var hit = 0; hit < 3; hit++)
                {
                    var stop = await process.WaitForStopAsync(default);
                    Assert.Equal(StopReason.Breakpoint, stop.Reason);
                    process.StepOverBreakpoint(stop.ThreadId, patch);
                    process.Resume();
                }

                process.RequestStop();
                await process.WaitForStopAsync(default);
                process.RemoveBreakpoint(patch);
                process.Release(ReleaseMode.Run);
            },
            kit.Kernel,
            new DeterministicSchedulerOptions
            {
                Seed = seed,
                KernelStepProbability = 0.5,
                AfterKernelStep = k => clean &= k.Observe(pid).Exists,
            });
        kit.Kernel.RunUntilQuiet(50);
        clean &= kit.Kernel.TextIsOriginal(pid) && kit.Kernel.Observe(pid) == new FakeObservation(true, false, false, false);
        return [.. kit.Kernel.Log, clean ? "clean" : "dirty"];
    }
}
