using ProcHex.Ports;
using Snapshooter.Xunit;

namespace ProcHex.Backends.Fake.Tests;

public class EventLogTests
{
    [Fact]
    public void The_event_log_of_a_traced_fork_reads_like_the_kernel_did_it()
    {
        var kit = new TestKit();
        var process = kit.Start(kit.Programs.Fork, "1");
        var patch = process.PlantBreakpointWhenStopped(kit);
        Assert.Equal(StopReason.ForkStarting, kit.NextStop(process).Reason);
        process.RemoveBreakpoint(patch);
        process.Resume();
        Assert.Equal(StopReason.ForkDone, kit.NextStop(process).Reason);
        var replanted = process.PlantBreakpoint(patch.Address);
        process.Resume();
        kit.RunToExit(process, replanted);
        process.Release(ReleaseMode.Kill);

        Snapshot.Match(kit.Kernel.Log);
    }

    [Fact]
    public void The_catalogue_programs_do_what_the_scenario_suite_expects()
    {
        var kit = new TestKit();
        var loop = kit.Kernel.Spawn(kit.Programs.Loop, "4", "9");
        var crash = kit.Kernel.Spawn(kit.Programs.Crash);
        var fork = kit.Kernel.Spawn(kit.Programs.Fork, "2");
        var vfork = kit.Kernel.Spawn(kit.Programs.Vfork, "2");
        var exec = kit.Kernel.Spawn(kit.Programs.Exec, "2");
        var threads = kit.Kernel.Spawn(kit.Programs.Threads, "7");
        var dlopen = kit.Kernel.Spawn(kit.Programs.Dlopen, "3");
        var selfStop = kit.Kernel.Spawn(kit.Programs.SelfStop);

        kit.Kernel.RunUntilQuiet();
        Assert.True(kit.Kernel.Observe(selfStop).Stopped);
        kit.Kernel.ContinueByOthers(selfStop);
        kit.Kernel.RunUntilQuiet();

        Assert.Equal(ExitStatus.FromCode(9), kit.Kernel.ExitStatusOf(loop));
        Assert.Equal(ExitStatus.FromSignal(Signals.Segv, coreDumped: true), kit.Kernel.ExitStatusOf(crash));
        Assert.All(new[] { fork, vfork, exec, threads, dlopen, selfStop }, pid => Assert.Equal(ExitStatus.FromCode(0), kit.Kernel.ExitStatusOf(pid)));
        Assert.Empty(kit.Kernel.Pids);
    }

    [Fact]
    public void The_threads_program_makes_exactly_N_calls_over_four_threads()
    {
        var kit = new TestKit();
        var process = kit.Create(kit.Programs.Threads, "10");
        process.Resume();
        var threads = new HashSet<int>();
        for (var i = 0; i < 100 && kit.Kernel.Step(); i++)
        {
            foreach (var tid in kit.Kernel.ThreadsOf(process.Pid))
            {
                threads.Add(tid);
            }
        }

        Assert.Equal(4, threads.Count);
        Assert.Equal(StopKind.Exited, kit.NextStop(process).Kind);
    }
}
