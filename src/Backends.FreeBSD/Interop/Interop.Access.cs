using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Sys
    {
        internal const int X_OK = 0x01;

        /// <summary><c>int access(const char *, int)</c>: X_OK is 0x01 (sys/sys/unistd.h).</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "access", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static partial int Access(string path, int mode);
    }
}
