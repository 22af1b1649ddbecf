using System.Runtime.InteropServices;

namespace ProcHex.Backends.Linux;

internal static partial class Interop
{
    internal static partial class Sys
    {
        internal const int WNOHANG = 1;
        internal const int WUNTRACED = 2;
        internal const int __WNOTHREAD = 0x20000000;
        internal const int __WALL = 0x40000000;

        /// <summary>
        /// Never call with pid -1 unless <see cref="__WNOTHREAD"/> is in <paramref name="options"/>: the runtime's
        /// own children (Process.Start) would be reaped and the runtime fails fast when it finds them gone.
        /// </summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "waitpid", SetLastError = true)]
        internal static unsafe partial int WaitPid(int pid, int* status, int options);
    }
}
