using ProcHex.Ports;

namespace ProcHex.Backends.Fake.Tests;

public class DeterministicSchedulerTests
{
    [Fact]
    public void Waits_complete_from_kernel_steps_and_continuations_run_on_the_pump()
    {
        var kit = new TestKit();
        var pumpThread = Environment.CurrentManagedThreadId;
        var continuationThreads = new HashSet<int>();
        var hits = 0;

        DeterministicScheduler.Run(
            async () =>
            {
                var process = kit.Start(kit.Programs.Loop, "3");
                process.RequestStop();
                await process.WaitForStopAsync(CancellationToken.None);
                var patch = process.PlantBreakpoint(TestKit.Address(process, "work"));
                process.Resume();
                while (true)
                {
                    var stop = await process.WaitForStopAsync(CancellationToken.None);
                    continuationThreads.Add(Environment.CurrentManagedThreadId);
                    Assert.IsType<DeterministicScheduler>(SynchronizationContext.Current);
                    if (stop.Kind == StopKind.Exited)
                    {
                        break;
                    }

                    hits++;
                    process.StepOverBreakpoint(stop.ThreadId, patch);
                    process.Resume();
                }

                process.Release(ReleaseMode.Kill);
            },
            kit.Kernel,
            seed: 1,
            maxSteps: 1000);

        Assert.Equal(3, hits);
        Assert.Equal([pumpThread], continuationThreads);
    }

    [Fact]
    public void The_same_seed_replays_the_same_event_log()
    {
        var first = RunRace(seed: 42);
        var second = RunRace(seed: 42);

        Assert.Equal(first, second);
        Assert.Contains(Enumerable.Range(0, 20).Select(RunRace), log => !log.SequenceEqual(first));
    }

    [Fact]
    public void A_body_waiting_for_what_never_comes_is_reported_stuck_with_every_victim()
    {
        var kit = new TestKit();

        var stuck = Assert.Throws<SimulationStuckException>(() => DeterministicScheduler.Run(
            async () =>
            {
                var process = kit.Start(kit.Programs.SelfStop);
                Assert.Equal(StopReason.StoppedByOthers, (await process.WaitForStopAsync(CancellationToken.None)).Reason);
                process.AwaitExternalResume();
                await process.WaitForStopAsync(CancellationToken.None);
            },
            kit.Kernel,
            new DeterministicSchedulerOptions { Seed = 3, ForeignWorkGrace = TimeSpan.FromMilliseconds(10) }));

        Assert.Contains("pid 100 /usr/libexec/prochex-test/selfstop", stuck.Victims, StringComparison.Ordinal);
        Assert.Contains("awaiting external resume", stuck.Victims, StringComparison.Ordinal);
        Assert.Contains("waiter pending", stuck.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_victim_that_never_ends_exhausts_the_step_budget()
    {
        var kit = new TestKit();

        var stuck = Assert.Throws<SimulationStuckException>(() => DeterministicScheduler.Run(
            async () => await kit.Start(kit.Programs.Sleeper).WaitForStopAsync(CancellationToken.None),
            kit.Kernel,
            seed: 3,
            maxSteps: 50));

        Assert.Contains("50 kernel steps", stuck.Message, StringComparison.Ordinal);
        Assert.Contains("(runnable)", stuck.Victims, StringComparison.Ordinal);
    }

    [Fact]
    public void Exceptions_of_the_body_come_out_of_Run()
    {
        var kit = new TestKit();

        var error = Assert.Throws<TracerException>(() => DeterministicScheduler.Run(
            async () =>
            {
                await Task.Yield();
                kit.Start(kit.Programs.Sleeper).Resume();
            },
            kit.Kernel,
            seed: 1));

        Assert.Equal(Errno.EBUSY, error.ErrorNumber);
    }

    [Fact]
    public void Simulated_time_moves_with_kernel_steps_and_jumps_to_timers_when_idle()
    {
        var kit = new TestKit();
        var time = new SimulatedTime();
        var start = time.GetUtcNow();

        var elapsed = DeterministicScheduler.Run(
            async () =>
            {
                var process = kit.Start(kit.Programs.Loop, "5");
                await process.WaitForStopAsync(CancellationToken.None);
                var afterRun = time.GetUtcNow() - start;
                await Task.Delay(TimeSpan.FromSeconds(30), time);
                return (afterRun, total: time.GetUtcNow() - start);
            },
            kit.Kernel,
            new DeterministicSchedulerOptions { Seed = 5, Time = time });

        Assert.True(elapsed.afterRun > TimeSpan.Zero);
        Assert.True(elapsed.afterRun < TimeSpan.FromSeconds(1));
        Assert.Equal(elapsed.afterRun + TimeSpan.FromSeconds(30), elapsed.total);
    }

    [Fact]
    public async Task A_background_thread_may_step_the_kernel_while_clients_wait()
    {
        var kit = new TestKit();
        var process = kit.Start(kit.Programs.Loop, "200");
        using var done = new CancellationTokenSource();
        var stepper = new Thread(() =>
        {
            while (!done.IsCancellationRequested)
            {
                kit.Kernel.Step();
            }
        });
        stepper.Start();

        var stop = await process.WaitForStopAsync(CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        done.Cancel();
        stepper.Join();

        Assert.Equal(StopKind.Exited, stop.Kind);
        Assert.Equal(ExitStatus.FromCode(0), kit.Kernel.ExitStatusOf(process.Pid));
    }

    /// <summary>Two victims and a client that stops and resumes them: the interleaving depends on the seed only.</summary>
    private static List<string> RunRace(int seed)
    {
        var kit = new TestKit();
        DeterministicScheduler.Run(
            async () =>
            {
                var a = kit.Start(kit.Programs.Threads, "8");
                var b = kit.Start(kit.Programs.Fork, "2");
                var patchA = Plant(a);
                await Task.WhenAll(Drive(a, patchA), Drive(b, null));
            },
            kit.Kernel,
            new DeterministicSchedulerOptions { Seed = seed, KernelStepProbability = 0.3 });
        return [.. kit.Kernel.Log];

        BreakpointPatch Plant(FakeProcess process)
        {
            process.RequestStop();
            kit.NextStop(process);
            var patch = process.PlantBreakpoint(TestKit.Address(process, "work"));
            process.Resume();
            return patch;
        }

        static async Task Drive(FakeProcess process, BreakpointPatch? patch)
        {
            while (true)
            {
                var stop = await process.WaitForStopAsync(CancellationToken.None);
                if (stop.Kind != StopKind.Stopped)
                {
                    process.Release(ReleaseMode.Kill);
                    return;
                }

                if (stop.Reason == StopReason.Breakpoint)
                {
                    process.StepOverBreakpoint(stop.ThreadId, patch!.Value);
                }

                await Task.Yield();
                process.Resume();
            }
        }
    }
}
