using System.Runtime.InteropServices;

namespace ProcHex.Backends.Linux;

internal static partial class Interop
{
    internal static partial class Sys
    {
        internal const int PTRACE_CONT = 7;
        internal const int PTRACE_KILL = 8;
        internal const int PTRACE_SINGLESTEP = 9;
        internal const int PTRACE_GETREGS = 12;
        internal const int PTRACE_SETREGS = 13;
        internal const int PTRACE_DETACH = 17;
        internal const int PTRACE_SYSCALL = 24;
        internal const int PTRACE_SETOPTIONS = 0x4200;
        internal const int PTRACE_GETEVENTMSG = 0x4201;
        internal const int PTRACE_GETSIGINFO = 0x4202;
        internal const int PTRACE_SEIZE = 0x4206;
        internal const int PTRACE_INTERRUPT = 0x4207;
        internal const int PTRACE_LISTEN = 0x4208;
        internal const int PTRACE_PEEKSIGINFO = 0x4209;

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
        /// and returns the word read: only <see cref="TryPeekData"/> uses them.
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

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary>A ptrace request that must succeed; <paramref name="what"/> names it for the message.</summary>
        internal static void PtraceOrThrow(int request, int tid, nint address, nint data, string what)
        {
            if (Ptrace(request, tid, address, data) == -1)
            {
                throw Failure($"{what} (thread {tid})", LastErrno);
            }
        }

        /// <summary>A ptrace request whose failure the caller handles: returns 0 or the errno.</summary>
        internal static int TryPtrace(int request, int tid, nint address, nint data) =>
            Ptrace(request, tid, address, data) == -1 ? LastErrno : 0;

        internal const int PTRACE_PEEKDATA = 2;

        /// <summary>
        /// Reads one word through ptrace itself: 0, or the errno. Unlike /proc/PID/mem and process_vm_readv,
        /// which check the calling thread's credentials, ptrace checks those the tracer had when it attached, so
        /// this answers "may we, as this victim's tracer, still access its memory?" (EIO when not).
        /// </summary>
        internal static int TryPeekData(int tid, ulong address)
        {
            // SetLastError clears errno before the call: -1 with errno 0 is a word of all ones, not a failure.
            return Ptrace(PTRACE_PEEKDATA, tid, unchecked((nint)address), 0) == -1 ? LastErrno : 0;
        }

        internal static unsafe UserRegs GetRegs(int tid)
        {
            UserRegs regs;
            if (Ptrace(PTRACE_GETREGS, tid, 0, &regs) == -1)
            {
                throw Failure($"cannot read the registers of thread {tid}", LastErrno);
            }

            return regs;
        }

        internal static unsafe void SetRegs(int tid, in UserRegs regs)
        {
            var copy = regs;
            if (Ptrace(PTRACE_SETREGS, tid, 0, &copy) == -1)
            {
                throw Failure($"cannot write the registers of thread {tid}", LastErrno);
            }
        }

        internal static unsafe ulong GetEventMessage(int tid)
        {
            ulong message = 0;
            return Ptrace(PTRACE_GETEVENTMSG, tid, 0, &message) == -1 ? 0 : message;
        }

        /// <summary>The si_code of the signal <paramref name="tid"/> is stopped for, or null when it cannot be read.</summary>
        internal static unsafe int? GetSignalCode(int tid)
        {
            // siginfo_t is 128 bytes: si_signo, si_errno, si_code, then the union.
            var info = stackalloc int[32];
            return Ptrace(PTRACE_GETSIGINFO, tid, 0, info) == -1 ? null : info[2];
        }

        /// <summary>
        /// Whether a SIGTRAP the kernel raised (an int3: si_code SI_KERNEL) waits in the private queue of the stopped
        /// thread <paramref name="tid"/>, not yet taken (PTRACE_PEEKSIGINFO, Linux 3.10).
        /// </summary>
        internal static unsafe bool HasPendingKernelTrap(int tid)
        {
            const int Peek = 8;
            var args = stackalloc ulong[2];
            args[0] = 0;                       // off
            args[1] = (ulong)(uint)Peek << 32; // flags 0 (the thread's own queue), nr
            var infos = stackalloc int[32 * Peek];
            var n = (int)Ptrace(PTRACE_PEEKSIGINFO, tid, (nint)args, infos);
            for (var i = 0; i < n; i++)
            {
                if (infos[32 * i] == SIGTRAP && infos[(32 * i) + 2] == SI_KERNEL)
                {
                    return true;
                }
            }

            return false;
        }
    }
}
