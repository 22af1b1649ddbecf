using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static Interop;

namespace ProcHex.Backends.FreeBSD.Tests;

/// <summary>
/// Every struct that crosses into the kernel has the size and field offsets of ../shared/freebsd-abi.md, which
/// took them from the FreeBSD headers named in each test (offsets computed for LP64 amd64).
/// </summary>
[Trait("Backend", "FreeBSD")]
public class LayoutTests
{
    private static int Offset<T>(string field) => (int)Marshal.OffsetOf<T>(field);

    [Fact]
    public void Ptrace_io_desc_matches_sys_ptrace_h()
    {
        Assert.Equal(32, Unsafe.SizeOf<PtraceIoDesc>());
        Assert.Equal(32, Marshal.SizeOf<PtraceIoDesc>());
        Assert.Equal(0, Offset<PtraceIoDesc>(nameof(PtraceIoDesc.piod_op)));
        Assert.Equal(8, Offset<PtraceIoDesc>(nameof(PtraceIoDesc.piod_offs)));
        Assert.Equal(16, Offset<PtraceIoDesc>(nameof(PtraceIoDesc.piod_addr)));
        Assert.Equal(24, Offset<PtraceIoDesc>(nameof(PtraceIoDesc.piod_len)));
    }

    [Fact]
    public void Siginfo_matches_sys_signal_h()
    {
        Assert.Equal(80, Unsafe.SizeOf<SigInfo>());
        Assert.Equal(80, Marshal.SizeOf<SigInfo>());
        Assert.Equal(0, Offset<SigInfo>(nameof(SigInfo.si_signo)));
        Assert.Equal(4, Offset<SigInfo>(nameof(SigInfo.si_errno)));
        Assert.Equal(8, Offset<SigInfo>(nameof(SigInfo.si_code)));
        Assert.Equal(12, Offset<SigInfo>(nameof(SigInfo.si_pid)));
        Assert.Equal(16, Offset<SigInfo>(nameof(SigInfo.si_uid)));
        Assert.Equal(20, Offset<SigInfo>(nameof(SigInfo.si_status)));
        Assert.Equal(24, Offset<SigInfo>(nameof(SigInfo.si_addr)));
        Assert.Equal(32, Offset<SigInfo>(nameof(SigInfo.si_value)));
        Assert.Equal(40, Offset<SigInfo>(nameof(SigInfo._reason)));
    }

    [Fact]
    public void Sigset_matches_sys_sigset_h() => Assert.Equal(16, Unsafe.SizeOf<SigSet>());

    [Fact]
    public void Ptrace_lwpinfo_matches_sys_ptrace_h()
    {
        Assert.Equal(160, Unsafe.SizeOf<PtraceLwpInfo>());
        Assert.Equal(160, Marshal.SizeOf<PtraceLwpInfo>());
        Assert.Equal(0, Offset<PtraceLwpInfo>(nameof(PtraceLwpInfo.pl_lwpid)));
        Assert.Equal(4, Offset<PtraceLwpInfo>(nameof(PtraceLwpInfo.pl_event)));
        Assert.Equal(8, Offset<PtraceLwpInfo>(nameof(PtraceLwpInfo.pl_flags)));
        Assert.Equal(12, Offset<PtraceLwpInfo>(nameof(PtraceLwpInfo.pl_sigmask)));
        Assert.Equal(28, Offset<PtraceLwpInfo>(nameof(PtraceLwpInfo.pl_siglist)));
        Assert.Equal(48, Offset<PtraceLwpInfo>(nameof(PtraceLwpInfo.pl_siginfo)));
        Assert.Equal(128, Offset<PtraceLwpInfo>(nameof(PtraceLwpInfo.pl_tdname)));
        Assert.Equal(148, Offset<PtraceLwpInfo>(nameof(PtraceLwpInfo.pl_child_pid)));
        Assert.Equal(152, Offset<PtraceLwpInfo>(nameof(PtraceLwpInfo.pl_syscall_code)));
        Assert.Equal(156, Offset<PtraceLwpInfo>(nameof(PtraceLwpInfo.pl_syscall_narg)));
    }

    [Fact]
    public void Reg_matches_sys_x86_include_reg_h()
    {
        Assert.Equal(176, Unsafe.SizeOf<Reg>());
        Assert.Equal(176, Marshal.SizeOf<Reg>());
        string[] longs = ["r_r15", "r_r14", "r_r13", "r_r12", "r_r11", "r_r10", "r_r9", "r_r8", "r_rdi", "r_rsi", "r_rbp", "r_rbx", "r_rdx", "r_rcx", "r_rax"];
        for (var i = 0; i < longs.Length; i++)
        {
            Assert.Equal(i * 8, Offset<Reg>(longs[i]));
        }

        Assert.Equal(120, Offset<Reg>(nameof(Reg.r_trapno)));
        Assert.Equal(124, Offset<Reg>(nameof(Reg.r_fs)));
        Assert.Equal(126, Offset<Reg>(nameof(Reg.r_gs)));
        Assert.Equal(128, Offset<Reg>(nameof(Reg.r_err)));
        Assert.Equal(132, Offset<Reg>(nameof(Reg.r_es)));
        Assert.Equal(134, Offset<Reg>(nameof(Reg.r_ds)));
        Assert.Equal(136, Offset<Reg>(nameof(Reg.r_rip)));
        Assert.Equal(144, Offset<Reg>(nameof(Reg.r_cs)));
        Assert.Equal(152, Offset<Reg>(nameof(Reg.r_rflags)));
        Assert.Equal(160, Offset<Reg>(nameof(Reg.r_rsp)));
        Assert.Equal(168, Offset<Reg>(nameof(Reg.r_ss)));
    }

    [Fact]
    public void Kinfo_vmentry_matches_sys_user_h_KINFO_VMENTRY_SIZE()
    {
        Assert.Equal(1160, Unsafe.SizeOf<KinfoVmEntry>());
        Assert.Equal(1160, Marshal.SizeOf<KinfoVmEntry>());
        (string Field, int Offset)[] expected =
        [
            ("kve_structsize", 0), ("kve_type", 4), ("kve_start", 8), ("kve_end", 16), ("kve_offset", 24),
            ("kve_vn_fileid", 32), ("kve_vn_fsid_freebsd11", 40), ("kve_flags", 44), ("kve_resident", 48),
            ("kve_private_resident", 52), ("kve_protection", 56), ("kve_ref_count", 60), ("kve_shadow_count", 64),
            ("kve_vn_type", 68), ("kve_vn_size", 72), ("kve_vn_rdev_freebsd11", 80), ("kve_vn_mode", 84),
            ("kve_status", 86), ("kve_type_spec", 88), ("kve_vn_rdev", 96), ("_kve_ispare", 104), ("kve_path", 136),
        ];
        foreach (var (field, offset) in expected)
        {
            Assert.Equal(offset, Offset<KinfoVmEntry>(field));
        }
    }

    [Theory]
    [InlineData(0x057f, true, 5)]
    [InlineData(0x117f, true, 17)]
    public void Wait_status_stop_codes_follow_sys_wait_h(int status, bool stopped, int signal)
    {
        Assert.Equal(stopped, Wait.IfStopped(status));
        Assert.Equal(signal, Wait.StopSignal(status));
        Assert.Equal(status, Wait.StopCode(signal));
    }

    [Fact]
    public void Wait_status_exit_signal_and_continue_follow_sys_wait_h()
    {
        Assert.True(Wait.IfExited(0x0300));
        Assert.Equal(3, Wait.ExitStatus(0x0300));
        Assert.True(Wait.IfSignaled(0x8b));
        Assert.Equal(11, Wait.TermSignal(0x8b));
        Assert.True(Wait.CoreDumped(0x8b));
        Assert.True(Wait.IfContinued(0x13));
        Assert.False(Wait.IfSignaled(0x13));
    }
}
