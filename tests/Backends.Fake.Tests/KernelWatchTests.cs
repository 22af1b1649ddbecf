using ProcHex.Ports;

namespace ProcHex.Backends.Fake.Tests;

public class KernelWatchTests
{
    [Fact]
    public void WaitUntil_lets_a_body_wait_for_an_outside_observation_without_polling()
    {
        var kit = new TestKit();

        var calls = DeterministicScheduler.Run(
            async () =>
            {
                var pid = kit.Kernel.Spawn(kit.Programs.SelfStop);
                await kit.Kernel.WaitUntilAsync(k => k.Observe(pid).Stopped);
                var whileStopped = kit.Kernel.ReadGlobal(pid, "calls");
                kit.Kernel.ContinueByOthers(pid);
                await kit.Kernel.WaitUntilAsync(k => !k.Observe(pid).Exists);
                return (whileStopped, kit.Kernel.ExitStatusOf(pid));
            },
            kit.Kernel,
            seed: 9);

        Assert.Equal((0L, (ExitStatus?)ExitStatus.FromCode(0)), calls);
    }

    [Fact]
    public void WaitSteps_lets_the_victims_run_a_given_number_of_steps()
    {
        var kit = new TestKit();

        var (before, after) = DeterministicScheduler.Run(
            async () =>
            {
                var pid = kit.Kernel.Spawn(kit.Programs.Sleeper);
                var start = kit.Kernel.StepCount;
                await kit.Kernel.WaitStepsAsync(25);
                return (start, kit.Kernel.StepCount);
            },
            kit.Kernel,
            seed: 9);

        Assert.Equal(before + 25, after);
    }

    [Fact]
    public async Task A_cancelled_watch_is_abandoned()
    {
        var kit = new TestKit();
        using var cancel = new CancellationTokenSource();
        var watch = kit.Kernel.WaitUntilAsync(_ => false, cancel.Token);

        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => watch);
    }
}
