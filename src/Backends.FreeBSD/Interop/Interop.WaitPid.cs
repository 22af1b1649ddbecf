using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary>
        /// <c>pid_t waitpid(pid_t, int *, int)</c> (sys/sys/wait.h). The kernel adds WEXITED | WTRAPPED itself
        /// (sys/kern/kern_exit.c, kern_wait), so trace stops are reported without WUNTRACED.
        /// </summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "waitpid", SetLastError = true)]
        internal static unsafe partial int WaitPid(int pid, int* status, int options);
    }

    /// <summary>Wait options and status decoding, sys/sys/wait.h (freebsd-abi.md section 4).</summary>
    internal static class Wait
    {
        internal const int WNOHANG = 1;
        internal const int WUNTRACED = 2;
        internal const int WCONTINUED = 4;

        internal static bool IfStopped(int status) => (status & 0x7f) == 0x7f;

        internal static int StopSignal(int status) => (status >> 8) & 0xff;

        internal static bool IfExited(int status) => (status & 0x7f) == 0;

        internal static int ExitStatus(int status) => (status >> 8) & 0xff;

        internal static bool IfContinued(int status) => status == 0x13;

        internal static bool IfSignaled(int status) => (status & 0x7f) != 0x7f && (status & 0x7f) != 0 && status != 0x13;

        internal static int TermSignal(int status) => status & 0x7f;

        internal static bool CoreDumped(int status) => (status & 0x80) != 0;

        internal static int StopCode(int signal) => (signal << 8) | 0x7f;

        internal static int ExitCode(int code, int signal) => (code << 8) | signal;

        internal const int Continued = 0x13;
    }
}
