using ProcHex.Backends.Linux.Simulation.Kernel;
using Errno = ProcHex.Backends.Linux.Interop.Errno;
using Sys = ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux.Simulation.Tests;

/// <summary>Group stop, LISTEN and SIGCONT under PTRACE_SEIZE (ptrace(2) "Group-stop", "PTRACE_LISTEN").</summary>
public class GroupStopTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Sigstop_from_outside_makes_every_seized_thread_report_a_group_stop(int seed)
    {
        var (k, tids) = FakeVictims.Seized(FakeVictims.TwoSpinners(), seed: seed);
        k.ScheduleKill(tids[0], Sys.SIGSTOP);
        var (first, status, _) = k.WaitPid(-1, Sys.__WALL);
        Assert.Equal("signal 19", FakeVictims.Describe(status));
        k.Cont(first, Sys.SIGSTOP);
        foreach (var tid in tids)
        {
            Assert.Equal("group-stop 19", k.WaitFor(tid));
            Assert.Equal('t', k.ThreadState(tid));
        }
    }

    [Fact]
    public void Sigcont_wakes_a_listening_thread_with_a_trap_stop()
    {
        var (k, tids) = FakeVictims.Seized(FakeVictims.TwoSpinners());
        k.GroupStop(tids);
        k.Listen(tids[0]);
        k.Listen(tids[1]);
        Assert.Equal((0, 0, 0), k.WaitPid(-1, Sys.__WALL | Sys.WNOHANG));
        Assert.Equal('t', k.ThreadState(tids[1]));

        Assert.Equal(0, k.Kill(tids[0], Sys.SIGCONT));
        Assert.Equal("trap-stop", k.WaitFor(tids[0]));
        Assert.Equal("trap-stop", k.WaitFor(tids[1]));
    }

    [Fact]
    public void Sigcont_leaves_a_thread_in_a_trap_stop_stopped_and_it_retraps_when_resumed()
    {
        var (k, tids) = FakeVictims.Seized(FakeVictims.TwoSpinners());
        k.GroupStop(tids);
        Assert.Equal(0, k.Kill(tids[0], Sys.SIGCONT));
        k.Run(100);
        Assert.Equal('t', k.ThreadState(tids[1]));
        Assert.Equal((0, 0, 0), k.WaitPid(tids[1], Sys.__WALL | Sys.WNOHANG));

        k.Cont(tids[1]);
        Assert.Equal("trap-stop", k.WaitFor(tids[1]));
    }

    [Fact]
    public void A_traced_sigcont_is_reported_as_a_signal_delivery_stop_after_the_retrap()
    {
        var (k, tids) = FakeVictims.Seized(FakeVictims.TwoSpinners());
        k.GroupStop(tids);
        k.Listen(tids[0]);
        Assert.Equal(0, k.Kill(tids[0], Sys.SIGCONT));
        Assert.Equal("trap-stop", k.WaitFor(tids[0]));
        k.Cont(tids[0]);
        Assert.Equal("signal 18", k.WaitFor(tids[0]));
        k.Cont(tids[0]);
        var before = k.Progress(tids[0]);
        k.Run(50);
        Assert.True(k.Progress(tids[0]) > before);
        Assert.Equal('R', k.ThreadState(tids[0]));
    }

    [Fact]
    public void Listen_outside_a_ptrace_event_stop_fails_with_EIO()
    {
        var (k, tids) = FakeVictims.Seized(FakeVictims.TwoSpinners());
        Assert.Equal(0, k.Tgkill(tids[0], tids[0], Sys.SIGUSR1));
        Assert.Equal("signal 10", k.WaitFor(tids[0]));
        Assert.Equal(Errno.EIO, k.Ptrace(Sys.PTRACE_LISTEN, tids[0], 0, 0));
    }

    [Fact]
    public void Listen_after_the_group_stop_already_ended_retraps_at_once()
    {
        var (k, tids) = FakeVictims.Seized(FakeVictims.TwoSpinners());
        k.GroupStop(tids);
        Assert.Equal(0, k.Kill(tids[0], Sys.SIGCONT));
        k.Listen(tids[0]);
        Assert.Equal('R', k.ThreadState(tids[0]));
        Assert.Equal("trap-stop", k.WaitFor(tids[0]));
    }

    [Fact]
    public void Cont_of_a_seized_thread_in_group_stop_lets_it_run_while_the_others_stay_stopped()
    {
        var (k, tids) = FakeVictims.Seized(FakeVictims.TwoSpinners());
        k.GroupStop(tids);
        k.Cont(tids[1]);
        var before = k.Progress(tids[1]);
        k.Run(50);
        Assert.True(k.Progress(tids[1]) > before);
        Assert.Equal('R', k.ThreadState(tids[1]));
        Assert.Equal('t', k.ThreadState(tids[0]));
    }

    [Fact]
    public void Sigcont_before_the_second_thread_reported_ends_the_stop_and_that_thread_retraps_with_sigtrap()
    {
        var (k, tids) = FakeVictims.Seized(FakeVictims.TwoSpinners());
        k.Interrupt(tids[1]);
        Assert.Equal("trap-stop", k.WaitFor(tids[1]));
        k.GroupStop([tids[0]]);
        Assert.Equal(0, k.Kill(tids[0], Sys.SIGCONT));

        k.Cont(tids[1]);
        Assert.Equal("trap-stop", k.WaitFor(tids[1]));
        k.Cont(tids[0]);
        Assert.Equal("trap-stop", k.WaitFor(tids[0]));
    }

    [Fact]
    public void A_thread_born_into_a_group_stop_reports_the_group_stop_first()
    {
        var image = new FakeImage("late").Function("main", new Compute(20), new SpawnThread("worker"), new Compute(1), new Jump(2))
            .Function("worker", new Compute(1), new Jump(0));
        var (k, tids) = FakeVictims.Seized(image, threads: 1);
        k.GroupStop(tids);
        k.Cont(tids[0]);
        Assert.Equal("event 3", k.WaitFor(tids[0]));
        Assert.Equal(0, k.GetEventMessage(tids[0], out var child));
        Assert.Equal("group-stop 19", k.WaitFor((int)child));
    }

    [Fact]
    public void Seizing_a_process_stopped_by_someone_else_reports_its_group_stop_at_once()
    {
        var k = new FakeLinuxKernel(3);
        var pid = k.Spawn(FakeVictims.Spinner());
        Assert.Equal(0, k.Kill(pid, Sys.SIGSTOP));
        Assert.True(k.RunUntil(() => k.ThreadState(pid) == 'T'));
        Assert.Equal(0, k.Ptrace(Sys.PTRACE_SEIZE, pid, 0, FakeVictims.Options));
        Assert.Equal('t', k.ThreadState(pid));
        var (result, status, _) = k.WaitPid(pid, Sys.__WALL | Sys.WNOHANG);
        Assert.Equal((pid, "group-stop 19"), (result, FakeVictims.Describe(status)));
    }
}
