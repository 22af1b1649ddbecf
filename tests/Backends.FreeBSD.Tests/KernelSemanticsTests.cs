using System.Text;
using ProcHex.Backends.FreeBSD.Tests.FakeKernel;
using static Interop;

namespace ProcHex.Backends.FreeBSD.Tests;

/// <summary>
/// The kernel fake against the FreeBSD source, one test per modelled behaviour, through the raw system calls (no
/// adapter). Each test names the function it follows; the fake's class remarks list the same behaviours. If FreeBSD
/// is found to behave differently, the test and the fake change together, and the adapter's tests show the damage.
/// </summary>
[Trait("Backend", "FreeBSD")]
[Trait("Area", "KernelSemantics")]
public unsafe class KernelSemanticsTests
{
    private static (FakeFreeBsdKernel Kernel, PtraceCalls Ptrace, int Pid) AttachedSleeper(FakeAttach attach)
    {
        var kernel = FakePrograms.Kernel(attach);
        var pid = kernel.StartUntraced(FakePrograms.Sleeper);
        var ptrace = new PtraceCalls(kernel);
        Assert.Equal(0, kernel.Ptrace(PtraceRequest.PT_ATTACH, pid, 0, 0, out _));
        Assert.Equal(Signals.SIGSTOP, Wait.StopSignal(WaitBlocking(kernel, pid)));
        return (kernel, ptrace, pid);
    }

    private static int WaitBlocking(FakeFreeBsdKernel kernel, int pid, int options = 0)
    {
        Assert.Equal(pid, kernel.WaitPid(pid, out var status, options, out var errno));
        Assert.Equal(0, errno);
        return status;
    }

    private static bool NothingToReport(FakeFreeBsdKernel kernel, int pid, int options = 0) =>
        kernel.WaitPid(pid, out _, options | Wait.WNOHANG, out _) == 0;

    private static void Continue(FakeFreeBsdKernel kernel, int pid, int signal = 0) =>
        Assert.Equal(0, kernel.Ptrace(PtraceRequest.PT_CONTINUE, pid, PtraceRequest.ResumeHere, signal, out _));

    [Fact]
    public void Classic_attach_stop_is_a_SIGSTOP_whose_siginfo_has_no_sender_sigqueue_add_fast_path()
    {
        var (_, ptrace, pid) = AttachedSleeper(FakeAttach.Classic);

        var info = ptrace.LwpInfo(pid);
        Assert.NotEqual(0, info.pl_flags & (int)LwpFlags.PL_FLAG_SI);
        Assert.Equal(Signals.SIGSTOP, info.pl_siginfo.si_signo);
        Assert.Equal(0, info.pl_siginfo.si_code);
        Assert.Equal(0, info.pl_siginfo.si_pid);
    }

    [Fact]
    public void Transparent_attach_stop_has_no_siginfo_and_the_first_continue_drops_its_signal()
    {
        var (kernel, ptrace, pid) = AttachedSleeper(FakeAttach.Transparent);
        Assert.Equal(0, ptrace.LwpInfo(pid).pl_flags & (int)LwpFlags.PL_FLAG_SI);

        Continue(kernel, pid, Signals.SIGSEGV);

        Assert.True(NothingToReport(kernel, pid));
        Assert.Equal((FakeState.Running, true), kernel.Observe(pid));
    }

    [Fact]
    public void Our_kill_SIGSTOP_carries_no_sender_and_two_pending_SIGSTOPs_make_one_stop_sigqueue_add()
    {
        var (kernel, ptrace, pid) = AttachedSleeper(FakeAttach.Classic);
        Continue(kernel, pid);

        Assert.Equal(0, kernel.Kill(pid, Signals.SIGSTOP, out _));
        kernel.SendSignal(pid, Signals.SIGSTOP);
        Assert.Equal(Signals.SIGSTOP, Wait.StopSignal(WaitBlocking(kernel, pid)));
        var info = ptrace.LwpInfo(pid);
        Continue(kernel, pid);

        Assert.Equal((0, 0), (info.pl_siginfo.si_code, info.pl_siginfo.si_pid));
        Assert.True(NothingToReport(kernel, pid));
    }

    [Fact]
    public void Other_signals_keep_their_sender_SI_USER_and_pid_issignal_sigqueue_get()
    {
        var (kernel, ptrace, pid) = AttachedSleeper(FakeAttach.Classic);
        Continue(kernel, pid);

        kernel.SendSignal(pid, Signals.SIGTSTP);
        Assert.Equal(Signals.SIGTSTP, Wait.StopSignal(WaitBlocking(kernel, pid)));
        var info = ptrace.LwpInfo(pid);

        Assert.Equal((SiCode.SI_USER, FakeFreeBsdKernel.OutsiderPid), (info.pl_siginfo.si_code, info.pl_siginfo.si_pid));
    }

    [Fact]
    public void SIGCONT_to_a_trace_stopped_process_is_only_queued_no_WCONTINUED_tdsendsignal()
    {
        var (kernel, ptrace, pid) = AttachedSleeper(FakeAttach.Classic);

        kernel.SendSignal(pid, Signals.SIGCONT);

        Assert.True(NothingToReport(kernel, pid, Wait.WCONTINUED));
        Assert.Equal([Signals.SIGCONT], kernel.Pending(pid));
        Assert.Equal((FakeState.TraceStopped, true), kernel.Observe(pid));
        Continue(kernel, pid);
        Assert.Equal(Signals.SIGCONT, Wait.StopSignal(WaitBlocking(kernel, pid)));
        Assert.Equal(FakeFreeBsdKernel.OutsiderPid, ptrace.LwpInfo(pid).pl_siginfo.si_pid);
    }

    [Fact]
    public void SIGCONT_deletes_a_pending_SIGSTOP_sigqueue_delete_stopmask_proc()
    {
        var (kernel, _, pid) = AttachedSleeper(FakeAttach.Classic);
        Continue(kernel, pid);

        Assert.Equal(0, kernel.Kill(pid, Signals.SIGSTOP, out _));
        kernel.SendSignal(pid, Signals.SIGCONT);

        Assert.Equal([Signals.SIGCONT], kernel.Pending(pid));
        Assert.Equal(Signals.SIGCONT, Wait.StopSignal(WaitBlocking(kernel, pid)));
    }

    [Fact]
    public void A_stop_signal_passed_back_to_a_traced_process_is_ignored_issignal()
    {
        var (kernel, _, pid) = AttachedSleeper(FakeAttach.Classic);

        Continue(kernel, pid, Signals.SIGSTOP);

        Assert.True(NothingToReport(kernel, pid));
        Assert.Equal((FakeState.Running, true), kernel.Observe(pid));
    }

    [Fact]
    public void SIGKILL_to_a_trace_stopped_process_waits_for_the_next_resume_tdsendsignal()
    {
        var (kernel, _, pid) = AttachedSleeper(FakeAttach.Classic);

        kernel.SendSignal(pid, Signals.SIGKILL);

        Assert.True(NothingToReport(kernel, pid));
        Assert.Equal((FakeState.TraceStopped, true), kernel.Observe(pid));
        Continue(kernel, pid);
        var status = WaitBlocking(kernel, pid);
        Assert.True(Wait.IfSignaled(status));
        Assert.Equal(Signals.SIGKILL, Wait.TermSignal(status));
    }

    [Fact]
    public void SIGKILL_to_a_running_traced_process_is_reported_as_a_signal_stop_first_ptracestop()
    {
        var (kernel, _, pid) = AttachedSleeper(FakeAttach.Classic);
        Continue(kernel, pid);

        kernel.SendSignal(pid, Signals.SIGKILL);

        Assert.Equal(Signals.SIGKILL, Wait.StopSignal(WaitBlocking(kernel, pid)));
        Continue(kernel, pid);
        Assert.Equal(Signals.SIGKILL, Wait.TermSignal(WaitBlocking(kernel, pid)));
    }

    [Fact]
    public void PT_IO_across_unmapped_memory_fails_with_EFAULT_and_the_length_unchanged_sys_ptrace()
    {
        var (kernel, _, pid) = AttachedSleeper(FakeAttach.Classic);
        var buffer = new byte[16];
        fixed (byte* p = buffer)
        {
            // The scratch page is 0x600000-0x601000: the last 8 bytes are mapped, the next 8 are not.
            var desc = new PtraceIoDesc { piod_op = PiodOp.PIOD_READ_D, piod_offs = 0x600ff8, piod_addr = (nint)p, piod_len = 16 };

            Assert.Equal(-1, kernel.Ptrace(PtraceRequest.PT_IO, pid, (nint)(&desc), 0, out var errno));
            Assert.Equal(Errno.EFAULT, errno);
            Assert.Equal(16UL, (ulong)desc.piod_len);
        }
    }

    [Theory]
    [InlineData(FakeSignals.SIGURG)]
    [InlineData(Signals.SIGCHLD)]
    [InlineData(FakeSignals.SIGIO)]
    [InlineData(FakeSignals.SIGWINCH)]
    [InlineData(FakeSignals.SIGINFO)]
    public void Signals_ignored_by_default_are_discarded_when_sent_even_to_a_traced_process_siginit(int signal)
    {
        var (kernel, _, pid) = AttachedSleeper(FakeAttach.Classic);
        Continue(kernel, pid);
        var untraced = kernel.StartUntraced(FakePrograms.Sleeper);

        kernel.SendSignal(pid, signal);
        kernel.SendSignal(untraced, signal);

        Assert.True(NothingToReport(kernel, pid));
        Assert.Empty(kernel.Pending(pid));
        Assert.Equal((FakeState.Running, false), kernel.Observe(untraced));
    }

    [Fact]
    public void Kill_0_on_a_zombie_succeeds_tdsendsignal()
    {
        var (kernel, _, pid) = AttachedSleeper(FakeAttach.Classic);
        Assert.Equal(0, kernel.Ptrace(PtraceRequest.PT_KILL, pid, 0, 0, out _));
        Assert.Equal(FakeState.Zombie, kernel.Observe(pid)!.Value.State);

        Assert.Equal(0, kernel.Kill(pid, 0, out var errno));
        Assert.Equal(0, errno);
    }

    [Fact]
    public void A_traced_fork_child_first_stops_with_SIGSTOP_PL_FLAG_CHILD_and_PL_FLAG_SCX_fork_return()
    {
        var kernel = FakePrograms.Kernel(FakeAttach.Classic, n: 1);
        var pid = kernel.StartUntraced(FakePrograms.Forker);
        var ptrace = new PtraceCalls(kernel);
        Assert.Equal(0, kernel.Ptrace(PtraceRequest.PT_ATTACH, pid, 0, 0, out _));
        _ = WaitBlocking(kernel, pid);
        ptrace.SetEventMask(pid, PtraceEvents.PTRACE_FORK);
        Continue(kernel, pid);
        _ = WaitBlocking(kernel, pid);
        var child = ptrace.LwpInfo(pid).pl_child_pid;

        Assert.Equal(Signals.SIGSTOP, Wait.StopSignal(WaitBlocking(kernel, child)));
        var flags = (LwpFlags)ptrace.LwpInfo(child).pl_flags;
        Assert.Equal(LwpFlags.PL_FLAG_CHILD | LwpFlags.PL_FLAG_SCX, flags);
    }

    [Fact]
    public void PT_DETACH_removes_no_pending_signal_a_queued_SIGSTOP_stops_the_detached_process_kern_ptrace()
    {
        var (kernel, _, pid) = AttachedSleeper(FakeAttach.Classic);
        Assert.Equal(0, kernel.Kill(pid, Signals.SIGSTOP, out _));

        Assert.Equal(0, kernel.Ptrace(PtraceRequest.PT_DETACH, pid, PtraceRequest.ResumeHere, 0, out _));

        Assert.Equal((FakeState.JobStopped, false), kernel.Observe(pid));
    }

    [Fact]
    public void KERN_PROC_PATHNAME_is_the_path_of_the_exec_and_KERN_PROC_PID_shows_pending_signals_kern_proc()
    {
        var (kernel, _, pid) = AttachedSleeper(FakeAttach.Classic);
        kernel.SendSignal(pid, Signals.SIGCONT);

        var path = new byte[256];
        nuint length = (nuint)path.Length;
        Assert.Equal(0, kernel.Sysctl([SysctlMib.CTL_KERN, SysctlMib.KERN_PROC, SysctlMib.KERN_PROC_PATHNAME, pid], path, ref length, out _));
        var kinfo = new byte[KinfoProc.Size];
        nuint kinfoLength = (nuint)kinfo.Length;
        Assert.Equal(0, kernel.Sysctl([SysctlMib.CTL_KERN, SysctlMib.KERN_PROC, SysctlMib.KERN_PROC_PID, pid], kinfo, ref kinfoLength, out _));

        Assert.Equal(FakePrograms.Sleeper + "\0", Encoding.UTF8.GetString(path, 0, (int)length));
        Assert.Equal(pid, BitConverter.ToInt32(kinfo, KinfoProc.PidOffset));
        Assert.Equal(1u << (Signals.SIGCONT - 1), BitConverter.ToUInt32(kinfo, KinfoProc.SiglistOffset));
    }
}
