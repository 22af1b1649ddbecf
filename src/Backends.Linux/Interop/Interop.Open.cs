using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace ProcHex.Backends.Linux;

internal static partial class Interop
{
    internal static partial class Sys
    {
        internal const int O_RDONLY = 0;
        internal const int O_RDWR = 2;
        internal const int O_CLOEXEC = 0x80000;

        [LibraryImport(Libraries.Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial SafeFileDescriptorHandle Open(string path, int flags);

        [LibraryImport(Libraries.Libc, EntryPoint = "close", SetLastError = true)]
        internal static partial int Close(int fd);

        [LibraryImport(Libraries.Libc, EntryPoint = "pread64", SetLastError = true)]
        internal static unsafe partial nint PRead(SafeFileDescriptorHandle fd, byte* buffer, nuint count, long offset);

        [LibraryImport(Libraries.Libc, EntryPoint = "pwrite64", SetLastError = true)]
        internal static unsafe partial nint PWrite(SafeFileDescriptorHandle fd, byte* buffer, nuint count, long offset);
    }

    /// <summary>A file descriptor from <c>open(2)</c>; closed exactly once.</summary>
    internal sealed class SafeFileDescriptorHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        public SafeFileDescriptorHandle() : base(ownsHandle: true) { }

        // fd 0 is a valid descriptor; only -1 means failure.
        public override bool IsInvalid => handle == -1;

        protected override bool ReleaseHandle() => Sys.Close((int)handle) == 0;
    }
}
