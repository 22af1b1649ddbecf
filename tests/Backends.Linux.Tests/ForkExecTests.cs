using ProcHex.Ports;
using ProcHex.Tests.Support;

namespace ProcHex.Tests;

[Trait("Backend", "Linux")]
public sealed class ForkExecTests : LinuxTestBase
{
    [Fact]
    [Trait("Spec", "S13")]
    public async Task A_fork_child_of_a_victim_with_breakpoints_runs_to_completion()
    {
        var p = await Create("fork", "50");
        var runner = new Runner(p);
        runner.Plant(BreakpointTests.WorkAddress(p, "fork"));
        var end = await runner.RunToEnd();

        // The parent exits 0 only when the child exited 7: the child never died of our breakpoints.
        Assert.Equal(ExitStatus.FromCode(0), end.Exit);
        Assert.Equal(50, runner.Hits);
        Assert.Contains(StopReason.ForkDone, runner.Reasons);
    }

    [Fact]
    [Trait("Spec", "S13")]
    public async Task Vfork_takes_breakpoints_out_until_the_child_lets_go()
    {
        var p = await Create("vfork", "40");
        var runner = new Runner(p);
        runner.Plant(BreakpointTests.WorkAddress(p, "vfork"));
        var end = await runner.RunToEnd();
        Assert.Equal(ExitStatus.FromCode(0), end.Exit);
        Assert.Equal(40, runner.Hits);
        Assert.Contains(StopReason.ForkStarting, runner.Reasons);
        Assert.Contains(StopReason.VforkDone, runner.Reasons);
    }

    [Fact]
    [Trait("Spec", "S13")]
    public async Task Exec_forgets_breakpoints_and_the_new_image_can_be_planted()
    {
        var p = await Create("exec", "30");
        var runner = new Runner(p)
        {
            OnExec = r => r.Plant(BreakpointTests.WorkAddress(p, "loop")),
        };
        runner.Plant(BreakpointTests.WorkAddress(p, "exec"));
        var end = await runner.RunToEnd();
        Assert.Equal(ExitStatus.FromCode(0), end.Exit);
        Assert.Equal(31, runner.Hits);
        Assert.Contains(StopReason.ExecDone, runner.Reasons);
    }
}
