using System.Runtime.InteropServices;

namespace ProcHex.Backends.Linux;

internal static partial class Interop
{
    internal static partial class Sys
    {
        [LibraryImport(Libraries.Libc, EntryPoint = "gettid")]
        internal static partial int GetTid();
    }
}
