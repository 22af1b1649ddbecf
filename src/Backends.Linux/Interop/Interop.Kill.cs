using System.Runtime.InteropServices;

namespace ProcHex.Backends.Linux;

internal static partial class Interop
{
    internal static partial class Sys
    {
        internal const int SIGILL = 4;
        internal const int SIGABRT = 6;
        internal const int SIGBUS = 7;
        internal const int SIGFPE = 8;
        internal const int SIGKILL = 9;
        internal const int SIGUSR1 = 10;
        internal const int SIGSEGV = 11;
        internal const int SIGTRAP = 5;
        internal const int SIGCHLD = 17;
        internal const int SIGCONT = 18;
        internal const int SIGSTOP = 19;
        internal const int SIGTSTP = 20;
        internal const int SIGTTIN = 21;
        internal const int SIGTTOU = 22;
        internal const int SIGSYS = 31;

        [LibraryImport(Libraries.Libc, EntryPoint = "kill", SetLastError = true)]
        internal static partial int Kill(int pid, int signal);
    }
}
