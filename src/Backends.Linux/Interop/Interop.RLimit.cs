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
        internal const int RLIMIT_NOFILE = 7;

        [LibraryImport(Libraries.Libc, EntryPoint = "getrlimit", SetLastError = true)]
        internal static unsafe partial int GetRLimit(int resource, RLimit* limit);

        [LibraryImport(Libraries.Libc, EntryPoint = "setrlimit", SetLastError = true)]
        internal static unsafe partial int SetRLimit(int resource, RLimit* limit);
    }
}
