using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Sys
    {
        [LibraryImport(Libraries.Libc, EntryPoint = "kill", SetLastError = true)]
        internal static partial int Kill(int pid, int signal);

        [LibraryImport(Libraries.Libc, EntryPoint = "getpid")]
        internal static partial int GetPid();
    }
}
