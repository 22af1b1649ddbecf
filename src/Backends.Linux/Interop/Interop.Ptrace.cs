using System.Runtime.InteropServices;

namespace ProcHex.Backends.Linux;

internal static partial class Interop
{
    internal static partial class Sys
    {
        internal const int PTRACE_PEEKDATA = 2;
        internal const int PTRACE_CONT = 7;
        internal const int PTRACE_KILL = 8;
        internal const int PTRACE_SINGLESTEP = 9;
        internal const int PTRACE_GETREGS = 12;
        internal const int PTRACE_SETREGS = 13;
        internal const int PTRACE_GETREGSET = 0x4204;
        internal const int PTRACE_SETREGSET = 0x4205;

        /// <summary>The regset of the x87/SSE/AVX state (the XSAVE area).</summary>
        internal const int NT_X86_XSTATE = 0x202;
        internal const int PTRACE_DETACH = 17;
        internal const int PTRACE_SYSCALL = 24;
        internal const int PTRACE_SETOPTIONS = 0x4200;
        internal const int PTRACE_GETEVENTMSG = 0x4201;
        internal const int PTRACE_GETSIGINFO = 0x4202;
        internal const int PTRACE_SEIZE = 0x4206;
        internal const int PTRACE_INTERRUPT = 0x4207;
        internal const int PTRACE_LISTEN = 0x4208;
        internal const int PTRACE_PEEKSIGINFO = 0x4209;
        internal const int PTRACE_GETSIGMASK = 0x420a;
        internal const int PTRACE_SETSIGMASK = 0x420b;

        internal const int PTRACE_O_TRACESYSGOOD = 0x1;
        internal const int PTRACE_O_TRACEFORK = 0x2;
        internal const int PTRACE_O_TRACEVFORK = 0x4;
        internal const int PTRACE_O_TRACECLONE = 0x8;
        internal const int PTRACE_O_TRACEEXEC = 0x10;
        internal const int PTRACE_O_TRACEVFORKDONE = 0x20;
        internal const int PTRACE_O_EXITKILL = 0x100000;

        internal const int PTRACE_EVENT_FORK = 1;
        internal const int PTRACE_EVENT_VFORK = 2;
        internal const int PTRACE_EVENT_CLONE = 3;
        internal const int PTRACE_EVENT_EXEC = 4;
        internal const int PTRACE_EVENT_VFORK_DONE = 5;
        internal const int PTRACE_EVENT_STOP = 128;

        /// <summary>si_code of the SIGTRAP an int3 raises (the kernel reports it as SI_KERNEL).</summary>
        internal const int SI_KERNEL = 0x80;

        /// <summary>
        /// glibc's <c>ptrace</c> is variadic; on x86-64 a variadic callee reads integer arguments exactly like a
        /// fixed one, so the four-argument form is safe. For PEEK requests glibc passes its own result word as data
        /// and returns the word read: only <see cref="LinuxKernel.PeekData"/> uses them.
        /// </summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "ptrace", SetLastError = true)]
        internal static partial nint Ptrace(int request, int pid, nint address, nint data);

        [LibraryImport(Libraries.Libc, EntryPoint = "ptrace", SetLastError = true)]
        internal static unsafe partial nint Ptrace(int request, int pid, nint address, void* data);
    }

    /// <summary>x86-64 <c>struct user_regs_struct</c> from &lt;sys/user.h&gt;, field for field.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct UserRegs
    {
        public ulong r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs, eflags, rsp, ss, fs_base, gs_base, ds, es, fs, gs;
    }
}
