using System.Runtime.InteropServices;

namespace ProcHex.Backends.Linux;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary>sizeof(struct stat) on x86-64.</summary>
        internal const int StatSize = 144;

        /// <summary>Offset of st_uid in struct stat on x86-64 (after st_dev, st_ino, st_nlink and st_mode).</summary>
        internal const int StatUidOffset = 28;

        [LibraryImport(Libraries.Libc, EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static unsafe partial int Stat(string path, byte* buffer);
    }
}
