using ProcHex.Backends.Linux.Simulation.Kernel;
using Sys = ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux.Simulation.Tests;

/// <summary>Thread birth and death, exec, fork and vfork, and the tracer's death (ptrace(2), kernel/exit.c).</summary>
public class ThreadLifeTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    public void A_clone_reports_the_parents_clone_event_and_the_new_threads_trap_stop_in_either_order(int seed)
    {
        var image = new FakeImage("clone").Function("main", new Compute(2), new SpawnThread("worker"), new Compute(1), new Jump(2))
            .Function("worker", new Compute(1), new Jump(0));
        var (k, tids) = FakeVictims.Seized(image, threads: 1, seed: seed);
        var reports = new List<string>();
        for (var i = 0; i < 2; i++)
        {
            var (tid, status, _) = k.WaitPid(-1, Sys.__WALL);
            reports.Add($"{(tid == tids[0] ? "parent" : "child")} {FakeVictims.Describe(status)}");
        }

        Assert.Equal(["child trap-stop", "parent event 3"], reports.Order());
        var child = k.TaskIds(tids[0]).Single(t => t != tids[0]);
        Assert.Equal(FakeLinuxKernel.TracerPid, k.TracerPidOf(child));
    }

    [Fact]
    public void Without_traceclone_a_new_thread_is_not_traced()
    {
        var image = new FakeImage("clone").Function("main", new SpawnThread("worker"), new Compute(1), new Jump(1))
            .Function("worker", new Compute(1), new Jump(0));
        var (k, tids) = FakeVictims.Seized(image, threads: 1, options: 0);
        Assert.True(k.RunUntil(() => k.TaskIds(tids[0]).Count == 2));
        Assert.Equal(0, k.TracerPidOf(k.TaskIds(tids[0])[1]));
    }

    [Fact]
    public void A_leaders_exit_is_reported_only_after_every_other_thread_is_reaped()
    {
        var image = new FakeImage("leader-exits").Function("main", new SpawnThread("worker"), new ExitThread(0))
            .Function("worker", new Compute(30), new ExitThread(7));
        var (k, tids) = FakeVictims.Seized(image, threads: 2);
        Assert.True(k.RunUntil(() => k.ThreadState(tids[0]) == 'Z'));
        Assert.Equal('Z', k.ProcessState(tids[0]));
        Assert.Equal((0, 0, 0), k.WaitPid(tids[0], Sys.__WALL | Sys.WNOHANG));
        Assert.Equal("exited 7", k.WaitFor(tids[1]));
        Assert.Equal("exited 0", k.WaitFor(tids[0]));
        Assert.Null(k.ProcessState(tids[0]));
    }

    [Fact]
    public void Exec_from_a_non_leader_kills_the_others_and_reports_exec_on_the_leader_tid()
    {
        var next = FakeVictims.Spinner();
        var image = new FakeImage("threadexec").Function("main", new SpawnThread("worker"), new Compute(1), new Jump(1))
            .Function("worker", new Compute(5), new Exec(next));
        var (k, tids) = FakeVictims.Seized(image, threads: 2);
        Assert.Equal("event 4", k.WaitFor(tids[0]));
        Assert.Equal(0, k.GetEventMessage(tids[0], out var former));
        Assert.Equal((ulong)tids[1], former);
        Assert.Equal([tids[0]], k.TaskIds(tids[0]));
        Assert.Null(k.ThreadState(tids[1]));
    }

    [Fact]
    public void A_stop_signal_dequeued_by_a_thread_that_an_exec_kills_dies_with_it()
    {
        // de_thread kills the other threads whatever stop they are in, a signal-delivery-stop for SIGSTOP too: that
        // SIGSTOP was dequeued, so no stop ever comes of it (do_signal_stop refuses once group_exec_task is set).
        // The simulation must not blame the release for it (linux simulation seed 21074).
        var image = new FakeImage("threadexec-stopped").Function("main", new SpawnThread("worker"), new Compute(1), new Jump(1))
            .Function("worker", new Compute(5), new Exec(FakeVictims.Spinner()));
        var (k, tids) = FakeVictims.Seized(image, threads: 2);
        var pid = tids[0];
        Assert.Equal(0, k.Tgkill(pid, pid, Sys.SIGSTOP));
        Assert.Equal("signal 19", k.WaitFor(pid));
        Assert.Equal(0, k.GroupOf(pid)!.StopSignalsLost);
        Assert.Equal("event 4", k.WaitFor(pid));
        k.Cont(pid);
        k.Run(50);
        var group = k.GroupOf(pid)!;
        Assert.Equal(1, group.StopSignalsLost);
        Assert.False(group.StopStopped || group.GroupStopCount > 0);
        Assert.Equal('R', k.ThreadState(pid));
    }

    [Fact]
    public void A_sigkill_during_a_multithreaded_exec_lets_the_emptied_group_be_reaped()
    {
        // de_thread: exec waits (D) until the zapped threads are reaped; a SIGKILL meanwhile fails the exec and its
        // "killed:" path clears group_exec_task, so once the tracer has reaped every thread the zombie leader goes
        // back to its real parent, which reaps it (wait_task_zombie, EXIT_TRACE then do_notify_parent). Seed 5025.
        var image = new FakeImage("threadexec-killed")
            .Function("main", new SpawnThread("idle"), new SpawnThread("worker"), new Compute(1), new Jump(2))
            .Function("idle", new Compute(1), new Jump(0))
            .Function("worker", new Compute(5), new Exec(FakeVictims.Spinner()));
        var (k, tids) = FakeVictims.Seized(image, threads: 3);
        var pid = tids[0];
        var worker = tids[2];
        var idle = tids[1];
        Assert.True(k.RunUntil(() => k.ThreadState(worker) == 'D' && k.ThreadState(idle) == 'Z' && k.ThreadState(pid) == 'Z'));
        Assert.Equal(0, k.Kill(pid, Sys.SIGKILL));
        Assert.Equal("exited 0", k.WaitFor(idle));
        Assert.Equal("killed 9", k.WaitFor(worker));
        Assert.Equal("exited 0", k.WaitFor(pid));
        k.Run(20);
        Assert.Null(k.ProcessState(pid));
        Assert.Empty(k.TaskIds(pid));
    }

    [Fact]
    public void A_traced_vfork_parent_waits_in_D_until_the_child_execs_then_reports_vfork_done()
    {
        var image = new FakeImage("vfork").Function("main", new Fork("child", Vfork: true), new Compute(1), new Jump(1))
            .Function("child", new Compute(5), new Exec(FakeVictims.Spinner()));
        var (k, tids) = FakeVictims.Seized(image, threads: 1);
        Assert.Equal("event 2", k.WaitFor(tids[0]));
        Assert.Equal(0, k.GetEventMessage(tids[0], out var child));
        Assert.Equal("trap-stop", k.WaitFor((int)child));
        k.Cont(tids[0]);
        k.Run(3);
        Assert.Equal('D', k.ThreadState(tids[0]));
        k.Cont((int)child);
        Assert.Equal("event 4", k.WaitFor((int)child));
        Assert.Equal("event 5", k.WaitFor(tids[0]));
    }

    [Fact]
    public void A_tracer_crash_leaves_a_victim_in_a_group_stop_stopped()
    {
        var (k, tids) = FakeVictims.Seized(FakeVictims.TwoSpinners());
        k.GroupStop(tids);
        k.Listen(tids[0]);
        k.CrashTracer();
        k.Run(100);
        Assert.Equal(['T', 'T'], tids.Select(t => k.ThreadState(t)));
        Assert.Equal(0, k.Kill(tids[0], Sys.SIGCONT));
        k.Run(100);
        Assert.Equal(['R', 'R'], tids.Select(t => k.ThreadState(t)));
    }

    [Fact]
    public void A_tracer_crash_with_exitkill_kills_the_victim()
    {
        var (k, tids) = FakeVictims.Seized(FakeVictims.TwoSpinners(), options: FakeVictims.Options | Sys.PTRACE_O_EXITKILL);
        k.GroupStop(tids);
        k.CrashTracer();
        k.Run(100);
        Assert.Null(k.ProcessState(tids[0]));
    }

    [Fact]
    public void Detaching_a_thread_during_a_group_stop_leaves_it_stopped_untraced()
    {
        var (k, tids) = FakeVictims.Seized(FakeVictims.TwoSpinners());
        k.GroupStop(tids);
        Assert.Equal(0, k.Ptrace(Sys.PTRACE_DETACH, tids[1], 0, 0));
        k.Run(50);
        Assert.Equal('T', k.ThreadState(tids[1]));
        Assert.Equal(0, k.TracerPidOf(tids[1]));
    }

    [Fact]
    public void Sigkill_ends_every_thread_whatever_stop_it_is_in()
    {
        var (k, tids) = FakeVictims.Seized(FakeVictims.TwoSpinners());
        k.GroupStop(tids);
        k.Listen(tids[1]);
        Assert.Equal(0, k.Kill(tids[0], Sys.SIGKILL));
        Assert.Equal("killed 9", k.WaitFor(tids[1]));
        Assert.Equal("killed 9", k.WaitFor(tids[0]));
        Assert.Null(k.ProcessState(tids[0]));
    }
}
