using System.Runtime.InteropServices;

namespace ProcHex.Backends.Linux;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary>sa_flags: no SIGCHLD when a child stops or continues (ptrace stops included), only when it ends.</summary>
        internal const int SA_NOCLDSTOP = 1;

        internal const nint SIG_DFL = 0;
        internal const nint SIG_IGN = 1;

        /// <summary>glibc's struct sigaction on x86-64 (152 bytes): handler, 1024-bit mask, flags, restorer.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal unsafe struct SigAction
        {
            public nint Handler;
            public fixed ulong Mask[16];
            public int Flags;
            public nint Restorer;
        }

        [LibraryImport(Libraries.Libc, EntryPoint = "sigaction", SetLastError = true)]
        internal static unsafe partial int SigActionCall(int signal, SigAction* action, SigAction* previous);
    }
}
