using System.Runtime.InteropServices;

namespace ProcHex.Backends.Linux;

internal static partial class Interop
{
    /// <summary><c>struct rlimit</c>: the soft (current) and hard (maximum) limit.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    internal static partial class Sys
    {
        internal const int RLIMIT_CPU = 0;
        internal const int RLIMIT_FSIZE = 1;
        internal const int RLIMIT_STACK = 3;
        internal const int RLIMIT_CORE = 4;
        internal const int RLIMIT_NOFILE = 7;
        internal const int RLIMIT_AS = 9;

        [LibraryImport(Libraries.Libc, EntryPoint = "getrlimit", SetLastError = true)]
        internal static unsafe partial int GetRLimit(int resource, RLimit* limit);

        [LibraryImport(Libraries.Libc, EntryPoint = "setrlimit", SetLastError = true)]
        internal static unsafe partial int SetRLimit(int resource, RLimit* limit);

        /// <summary>Another process's limits (a created victim's, set on the stopped trampoline before its exec).</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "prlimit", SetLastError = true)]
        internal static unsafe partial int PrLimit(int pid, int resource, ulong* newLimit, ulong* oldLimit);
    }
}
