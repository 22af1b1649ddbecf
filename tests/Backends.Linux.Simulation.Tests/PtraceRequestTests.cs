using ProcHex.Backends.Linux.Simulation.Kernel;
using Errno = ProcHex.Backends.Linux.Interop.Errno;
using Sys = ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux.Simulation.Tests;

/// <summary>PTRACE_INTERRUPT, request errors, registers and memory, waitpid's edges.</summary>
public class PtraceRequestTests
{
    [Fact]
    public void Interrupt_of_a_running_thread_gives_a_trap_stop()
    {
        var (k, tids) = FakeVictims.Seized(FakeVictims.TwoSpinners());
        k.Interrupt(tids[1]);
        Assert.Equal("trap-stop", k.WaitFor(tids[1]));
        Assert.Equal(0, k.GetSigInfo(tids[1], out var info));
        Assert.Equal(Sys.SIGTRAP | (Sys.PTRACE_EVENT_STOP << 8), info.Code);
        Assert.Equal('R', k.ThreadState(tids[0]));
    }

    [Fact]
    public void Interrupt_of_a_listening_thread_in_a_group_stop_reports_the_group_stop()
    {
        var (k, tids) = FakeVictims.Seized(FakeVictims.TwoSpinners());
        k.GroupStop(tids);
        k.Listen(tids[1]);
        k.Interrupt(tids[1]);
        Assert.Equal("group-stop 19", k.WaitFor(tids[1]));
    }

    [Fact]
    public void A_stale_interrupt_on_a_stopped_thread_fires_on_its_next_resume()
    {
        var (k, tids) = FakeVictims.Seized(FakeVictims.TwoSpinners());
        k.Interrupt(tids[0]);
        Assert.Equal("trap-stop", k.WaitFor(tids[0]));
        k.Interrupt(tids[0]);
        k.Run(20);
        Assert.Equal((0, 0, 0), k.WaitPid(tids[0], Sys.__WALL | Sys.WNOHANG));
        k.Cont(tids[0]);
        Assert.Equal("trap-stop", k.WaitFor(tids[0]));
    }

    [Theory]
    [InlineData(Sys.PTRACE_CONT)]
    [InlineData(Sys.PTRACE_LISTEN)]
    [InlineData(Sys.PTRACE_DETACH)]
    [InlineData(Sys.PTRACE_SETOPTIONS)]
    public void Requests_on_a_running_thread_fail_with_ESRCH(int request)
    {
        var (k, tids) = FakeVictims.Seized(FakeVictims.TwoSpinners());
        Assert.Equal(Errno.ESRCH, k.Ptrace(request, tids[0], 0, 0));
        Assert.Equal(Errno.ESRCH, k.GetRegs(tids[0], out _));
        Assert.Equal(Errno.ESRCH, k.PeekData(tids[0], FakeImage.TextBase));
    }

    [Fact]
    public void Requests_on_a_listening_thread_fail_with_ESRCH_but_interrupt_works()
    {
        var (k, tids) = FakeVictims.Seized(FakeVictims.TwoSpinners());
        k.GroupStop(tids);
        k.Listen(tids[0]);
        Assert.Equal(Errno.ESRCH, k.Ptrace(Sys.PTRACE_CONT, tids[0], 0, 0));
        Assert.Equal(Errno.ESRCH, k.Ptrace(Sys.PTRACE_LISTEN, tids[0], 0, 0));
        Assert.Equal(Errno.ESRCH, k.GetRegs(tids[0], out _));
        Assert.Equal(0, k.Ptrace(Sys.PTRACE_INTERRUPT, tids[0], 0, 0));
    }

    [Fact]
    public void Requests_on_an_untraced_or_unknown_thread_fail_with_ESRCH_and_seizing_twice_with_EPERM()
    {
        var (k, tids) = FakeVictims.Seized(FakeVictims.TwoSpinners());
        Assert.Equal(Errno.ESRCH, k.Ptrace(Sys.PTRACE_INTERRUPT, 9999, 0, 0));
        Assert.Equal(Errno.ESRCH, k.Ptrace(Sys.PTRACE_SEIZE, 9999, 0, 0));
        Assert.Equal(Errno.EPERM, k.Ptrace(Sys.PTRACE_SEIZE, tids[0], 0, 0));
        Assert.Equal(Errno.EIO, k.Ptrace(Sys.PTRACE_SEIZE, tids[0], 1, 0));
    }

    [Fact]
    public void An_int3_planted_through_proc_mem_stops_with_a_kernel_sigtrap_and_rip_past_it()
    {
        var k = new FakeLinuxKernel(5);
        var image = new FakeImage("bp").Function("main", new Compute(1), new Compute(1), new Jump(0));
        var pid = k.Spawn(image);
        var site = image.AddressOf("main") + 1;
        Assert.Equal(1, k.WriteProcMem(pid, site, [FakeImage.Int3]));
        Assert.Equal(0, k.Ptrace(Sys.PTRACE_SEIZE, pid, 0, FakeVictims.Options));

        Assert.Equal("signal 5", k.WaitFor(pid));
        Assert.Equal(0, k.GetSigInfo(pid, out var info));
        Assert.Equal(Sys.SI_KERNEL, info.Code);
        Assert.Equal(0, k.GetRegs(pid, out var regs));
        Assert.Equal(site + 1, regs.rip);

        // Step over it as a debugger does: restore the byte, rewind rip, resume without the signal.
        Assert.Equal(1, k.WriteProcMem(pid, site, [FakeImage.Nop]));
        regs.rip = site;
        Assert.Equal(0, k.SetRegs(pid, regs));
        k.Cont(pid);
        k.Run(50);
        Assert.Equal('R', k.ThreadState(pid));
    }

    [Fact]
    public void An_int3_trap_not_yet_dequeued_waits_behind_a_trap_stop_and_peeksiginfo_sees_it()
    {
        var k = new FakeLinuxKernel(6);
        var pid = k.Spawn(FakeVictims.Spinner());
        Assert.Equal(0, k.Ptrace(Sys.PTRACE_SEIZE, pid, 0, FakeVictims.Options));
        k.Interrupt(pid);
        Assert.Equal("trap-stop", k.WaitFor(pid));
        Assert.Equal(0, k.GetRegs(pid, out var regs));
        Assert.Equal(1, k.WriteProcMem(pid, regs.rip, [FakeImage.Int3]));

        k.Cont(pid);
        Assert.True(k.Step()); // the int3: SIGTRAP queued, not yet dequeued
        k.Interrupt(pid);
        Assert.Equal("trap-stop", k.WaitFor(pid));
        Assert.True(k.HasPendingKernelTrap(pid));
        k.Cont(pid);
        Assert.Equal("signal 5", k.WaitFor(pid));
        Assert.False(k.HasPendingKernelTrap(pid));
    }

    [Fact]
    public void Waitpid_without_tracees_fails_with_ECHILD_and_with_WNOHANG_and_nothing_to_report_returns_0()
    {
        var k = new FakeLinuxKernel(1);
        Assert.Equal((-1, 0, Errno.ECHILD), k.WaitPid(-1, Sys.__WALL));
        var pid = k.Spawn(FakeVictims.Spinner());
        Assert.Equal((-1, 0, Errno.ECHILD), k.WaitPid(pid, Sys.__WALL));
        Assert.Equal(0, k.Ptrace(Sys.PTRACE_SEIZE, pid, 0, 0));
        Assert.Equal((0, 0, 0), k.WaitPid(-1, Sys.__WALL | Sys.WNOHANG | Sys.__WNOTHREAD));
    }

    [Fact]
    public void A_blocking_wait_that_nothing_can_answer_is_reported_as_a_stall()
    {
        var (k, tids) = FakeVictims.Seized(FakeVictims.TwoSpinners());
        k.GroupStop(tids);
        Assert.Throws<SimulationStalledException>(() => k.WaitPid(-1, Sys.__WALL));
    }

    [Fact]
    public void The_same_seed_gives_the_same_run()
    {
        static string Run(int seed)
        {
            var (k, tids) = FakeVictims.Seized(FakeVictims.TwoSpinners(), seed: seed);
            k.ScheduleKill(tids[0], Sys.SIGSTOP);
            k.ScheduleKill(tids[0], Sys.SIGCONT);
            k.Run(200);
            return string.Join('\n', k.Log);
        }

        Assert.Equal(Run(42), Run(42));
    }
}
