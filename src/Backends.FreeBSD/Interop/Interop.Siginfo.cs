using System.Runtime.InteropServices;

internal static partial class Interop
{
    /// <summary>
    /// struct __siginfo (siginfo_t), sys/sys/signal.h: 80 bytes on amd64 (freebsd-abi.md section 4). The 40-byte
    /// _reason union is kept opaque: si_trapno would be its first int, we never need it.
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct SigInfo
    {
        internal int si_signo;
        internal int si_errno;
        internal int si_code;
        internal int si_pid;
        internal uint si_uid;
        internal int si_status;

        /// <summary>For a breakpoint or step SIGTRAP: the trapping RIP, already past the int3 (sys/amd64/amd64/trap.c).</summary>
        internal nint si_addr;
        internal nint si_value;
        internal fixed long _reason[5];
    }

    /// <summary>FreeBSD signal numbers, sys/sys/signal.h. They differ from Linux from 7 on (SIGBUS is 10, SIGSTOP 17).</summary>
    internal static class Signals
    {
        internal const int SIGKILL = 9;
        internal const int SIGTRAP = 5;
        internal const int SIGSEGV = 11;
        internal const int SIGPIPE = 13;
        internal const int SIGSTOP = 17;
        internal const int SIGTSTP = 18;
        internal const int SIGCONT = 19;
        internal const int SIGCHLD = 20;
        internal const int SIGTTIN = 21;
        internal const int SIGTTOU = 22;

        /// <summary>The job-control stop signals: those whose default action stops the process.</summary>
        internal static bool IsStopSignal(int signal) =>
            signal is SIGSTOP or SIGTSTP or SIGTTIN or SIGTTOU;
    }

    /// <summary>si_code values, sys/sys/signal.h.</summary>
    internal static class SiCode
    {
        internal const int TRAP_BRKPT = 1;
        internal const int TRAP_TRACE = 2;

        /// <summary>kill(2) and friends: si_pid names the sender.</summary>
        internal const int SI_USER = 0x10001;

        /// <summary>kern_psignal(): the kernel itself, which is how PT_ATTACH sends its SIGSTOP (sys/kern/kern_sig.c).</summary>
        internal const int SI_KERNEL = 0x10006;
    }
}
