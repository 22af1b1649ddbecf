using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary>
        /// <c>int ptrace(int request, pid_t pid, caddr_t addr, int data)</c> (sys/sys/ptrace.h). data is a 32-bit
        /// int, addr a pointer. The libc wrapper zeroes errno first because PT_READ_* may legitimately return -1.
        /// </summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "ptrace", SetLastError = true)]
        internal static partial int Ptrace(int request, int pid, nint addr, int data);
    }

    /// <summary>Requests, sys/sys/ptrace.h (values in freebsd-abi.md section 1).</summary>
    internal static class PtraceRequest
    {
        internal const int PT_CONTINUE = 7;
        internal const int PT_KILL = 8;
        internal const int PT_STEP = 9;
        internal const int PT_ATTACH = 10;
        internal const int PT_DETACH = 11;
        internal const int PT_IO = 12;
        internal const int PT_LWPINFO = 13;
        internal const int PT_GETNUMLWPS = 14;
        internal const int PT_GETLWPLIST = 15;
        internal const int PT_SUSPEND = 18;
        internal const int PT_RESUME = 19;
        internal const int PT_FOLLOW_FORK = 23;
        internal const int PT_GET_EVENT_MASK = 25;
        internal const int PT_SET_EVENT_MASK = 26;
        internal const int PT_GETREGS = 33;
        internal const int PT_SETREGS = 34;

        /// <summary>addr value meaning "resume where it stopped" for PT_CONTINUE, PT_STEP and PT_DETACH.</summary>
        internal const nint ResumeHere = 1;
    }

    /// <summary>PT_SET_EVENT_MASK bits, sys/sys/ptrace.h.</summary>
    [Flags]
    internal enum PtraceEvents
    {
        None = 0,
        PTRACE_EXEC = 0x0001,
        PTRACE_SCE = 0x0002,
        PTRACE_SCX = 0x0004,
        PTRACE_FORK = 0x0008,
        PTRACE_LWP = 0x0010,
        PTRACE_VFORK = 0x0020,
    }

    /// <summary>pl_flags, sys/sys/ptrace.h.</summary>
    [Flags]
    internal enum LwpFlags
    {
        None = 0,
        PL_FLAG_SCE = 0x04,
        PL_FLAG_SCX = 0x08,
        PL_FLAG_EXEC = 0x10,
        PL_FLAG_SI = 0x20,
        PL_FLAG_FORKED = 0x40,
        PL_FLAG_CHILD = 0x80,
        PL_FLAG_BORN = 0x100,
        PL_FLAG_EXITED = 0x200,
        PL_FLAG_VFORKED = 0x400,
        PL_FLAG_VFORK_DONE = 0x800,
    }

    internal static class LwpEvent
    {
        internal const int PL_EVENT_NONE = 0;
        internal const int PL_EVENT_SIGNAL = 1;
    }

    internal static class PiodOp
    {
        internal const int PIOD_READ_D = 1;
        internal const int PIOD_WRITE_D = 2;
        internal const int PIOD_READ_I = 3;
        internal const int PIOD_WRITE_I = 4;
    }

    /// <summary>struct ptrace_io_desc, sys/sys/ptrace.h: 32 bytes on amd64 (freebsd-abi.md section 2).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct PtraceIoDesc
    {
        internal int piod_op;

        /// <summary>Address in the victim.</summary>
        internal nint piod_offs;

        /// <summary>Buffer in the tracer.</summary>
        internal nint piod_addr;

        /// <summary>In: bytes asked for. Out: bytes transferred (kern_ptrace subtracts uio_resid).</summary>
        internal nuint piod_len;
    }

    /// <summary>sigset_t, sys/sys/_sigset.h: four 32-bit words; signal n is bit (n-1)%32 of word (n-1)/32.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct SigSet
    {
        internal fixed uint __bits[4];
    }

    /// <summary>
    /// struct ptrace_lwpinfo, sys/sys/ptrace.h: 160 bytes on amd64 (freebsd-abi.md section 2). PT_LWPINFO takes
    /// data = the size the caller knows; the kernel fills pl_siginfo only when data covers it.
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct PtraceLwpInfo
    {
        internal const int MAXCOMLEN = 19;

        internal int pl_lwpid;
        internal int pl_event;
        internal int pl_flags;
        internal SigSet pl_sigmask;
        internal SigSet pl_siglist;
        internal SigInfo pl_siginfo;
        internal fixed byte pl_tdname[MAXCOMLEN + 1];
        internal int pl_child_pid;
        internal uint pl_syscall_code;
        internal uint pl_syscall_narg;

        internal readonly LwpFlags Flags => (LwpFlags)pl_flags;
    }
}
