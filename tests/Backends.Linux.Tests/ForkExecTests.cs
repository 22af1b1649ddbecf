using ProcHex.PortContract;
using ProcHex.Ports;
using ProcHex.Backends.Linux.Tests.Support;

namespace ProcHex.Backends.Linux.Tests;

[Trait("Backend", "Linux")]
[Trait("Timing", "Race")] // races real signals and threads: .ci/run runs this class again in a loop
public sealed class ForkExecTests : LinuxTestBase
{
    [Fact]
    [Trait("Spec", "S13")]
    public async Task A_fork_child_of_a_victim_with_breakpoints_runs_to_completion()
    {
        var p = await Create("fork", "50");
        var runner = new PortDriver(p);
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
        var runner = new PortDriver(p);
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
        var runner = new PortDriver(p)
        {
            OnExec = r => r.Plant(BreakpointTests.WorkAddress(p, "loop")),
        };
        runner.Plant(BreakpointTests.WorkAddress(p, "exec"));
        var end = await runner.RunToEnd();
        Assert.Equal(ExitStatus.FromCode(0), end.Exit);
        Assert.Equal(31, runner.Hits);
        Assert.Contains(StopReason.ExecDone, runner.Reasons);
    }

    [Fact]
    [Trait("Spec", "S13")]
    public async Task An_exec_from_a_thread_that_is_not_the_leader_is_followed()
    {
        var p = await Create("threadexec", "12");
        var runner = new PortDriver(p)
        {
            OnExec = r =>
            {
                // The kernel reports the exec on the leader's tid; the old threads are gone, the pid stays.
                Assert.Equal([p.Pid], Directory.GetDirectories($"/proc/{p.Pid}/task").Select(t => int.Parse(Path.GetFileName(t), System.Globalization.CultureInfo.InvariantCulture)));
                r.Plant(BreakpointTests.WorkAddress(p, "loop"));
            },
        };
        runner.Plant(BreakpointTests.WorkAddress(p, "threadexec"));
        var end = await runner.RunToEnd();
        Assert.Equal(ExitStatus.FromCode(0), end.Exit);
        Assert.Equal(13, runner.Hits);
        Assert.Single(runner.HitThreads, t => t != p.Pid);
        Assert.Contains(StopReason.ExecDone, runner.Reasons);
    }

    [Fact]
    [Trait("Spec", "S13")]
    public async Task A_breakpoint_stop_of_a_leader_an_exec_took_over_is_not_reported()
    {
        // The leader stops at the breakpoint; before the core takes that stop, another thread execs: the kernel kills
        // the held leader and hands its tid to the exec'ing thread. The old stop is gone with the old leader and the
        // old image (linux simulation seed 9802): the core's first stop is the exec.
        var p = await Create("leaderexec", "3");
        var runner = new PortDriver(p);
        runner.Plant(BreakpointTests.WorkAddress(p, "leaderexec"));
        p.Resume();
        await AwaitExecTakeover(p.Pid);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var first = await p.WaitForStopAsync(cts.Token);
        Assert.Equal((StopKind.Stopped, StopReason.ExecDone, p.Pid), (first.Kind, first.Reason, first.ThreadId));
        var end = await runner.RunToEnd();
        Assert.Equal(ExitStatus.FromCode(0), end.Exit);
        Assert.Equal(0, runner.Hits);
    }

    [Fact]
    [Trait("Spec", "S13")]
    public async Task A_step_over_asked_for_a_leader_an_exec_took_over_is_dropped()
    {
        // As above, but the core took the breakpoint stop before the exec and answers it after: the step over belongs
        // to the old image and the old leader (linux simulation seed 1806). It must not act on the thread now holding
        // the leader's tid; the resume goes through and the exec is reported next.
        var p = await Create("leaderexec", "3");
        var patch = p.PlantBreakpoint(BreakpointTests.WorkAddress(p, "leaderexec"));
        p.Resume();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var hit = await p.WaitForStopAsync(cts.Token);
        Assert.Equal((StopReason.Breakpoint, p.Pid), (hit.Reason, hit.ThreadId));
        await AwaitExecTakeover(p.Pid);
        p.StepOverBreakpoint(hit.ThreadId, patch);
        p.Resume();
        var next = await p.WaitForStopAsync(cts.Token);
        Assert.Equal((StopKind.Stopped, StopReason.ExecDone, p.Pid), (next.Kind, next.Reason, next.ThreadId));
        var end = await new PortDriver(p).RunToEnd();
        Assert.Equal(ExitStatus.FromCode(0), end.Exit);
    }

    /// <summary>Waits until the exec of leaderexec is done (loop, one thread), then gives the owner time to read its report.</summary>
    private static async Task AwaitExecTakeover(int pid)
    {
        Assert.True(await Observe.Eventually(() =>
        {
            try
            {
                return File.ResolveLinkTarget($"/proc/{pid}/exe", false)?.FullName.EndsWith("/loop", StringComparison.Ordinal) == true
                    && Directory.GetDirectories($"/proc/{pid}/task").Length == 1;
            }
            catch (IOException)
            {
                return false;
            }
            catch (UnauthorizedAccessException)
            {
                return false;
            }
        }), $"pid {pid} did not exec");
        await Task.Delay(300);
    }

    [Fact]
    [Trait("Spec", "S1")]
    public async Task A_created_victim_dies_with_the_thread_that_traces_it()
    {
        // The tracer is a thread: when it ends (a crashed tracer), PTRACE_O_EXITKILL must take its victims along.
        // A short-lived thread is the owner for one create (a manual owner: the thread that makes it), then exits.
        var pid = 0;
        var tracer = new Thread(() =>
        {
            var owner = OwnerThread.Manual(LinuxKernel.Instance, null);
            var path = FixturePrograms.PathOf("sleeper");
            pid = Trampoline.Create(owner, new ProcessStartRequest(path, [path]), Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance).Pid;
        });
        tracer.Start();
        tracer.Join();
        Assert.NotEqual(0, pid);

        Assert.True(await Observe.Eventually(() => Observe.State(pid) is 'Z' or null), $"pid {pid} outlived its tracer: {Observe.State(pid)}");
        Assert.Equal(9, ReapKilledChild(pid));
    }

    /// <summary>Reaps a child of this process (its tracing thread is gone) and returns the signal that killed it.</summary>
    private static unsafe int ReapKilledChild(int pid)
    {
        int status;
        Assert.Equal(pid, WaitPid(pid, &status, 0x40000000 /* __WALL */));
        return status & 0x7f;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "waitpid")]
    private static extern unsafe int WaitPid(int pid, int* status, int options);
}
