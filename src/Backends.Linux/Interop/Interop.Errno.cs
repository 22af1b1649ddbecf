using System.Runtime.InteropServices;
using ProcHex.Ports;

namespace ProcHex.Backends.Linux;

internal static partial class Interop
{
    /// <summary>The errno values the backend reacts to by name.</summary>
    internal static class Errno
    {
        internal const int EPERM = 1;
        internal const int ENOENT = 2;
        internal const int ESRCH = 3;
        internal const int EINTR = 4;
        internal const int EIO = 5;
        internal const int ECHILD = 10;
        internal const int EAGAIN = 11;
        internal const int EACCES = 13;
        internal const int EFAULT = 14;
        internal const int EBUSY = 16;
        internal const int ENOTDIR = 20;
        internal const int ENFILE = 23;
        internal const int EMFILE = 24;
        internal const int EISDIR = 21;
        internal const int EINVAL = 22;
        internal const int ETXTBSY = 26;
        internal const int ENOEXEC = 8;
        internal const int ENOSYS = 38;

        /// <summary>The kind of failure an errno is: the one place this backend's errno numbers are judged.</summary>
        internal static TracerErrorKind KindOf(int errno) => errno switch
        {
            EPERM or EACCES => TracerErrorKind.PermissionDenied,
            ENOENT or ENOTDIR => TracerErrorKind.NotFound,
            ESRCH or ECHILD => TracerErrorKind.Gone,
            EINTR => TracerErrorKind.Interrupted,
            EIO or EFAULT => TracerErrorKind.BadAddress,
            EAGAIN or EMFILE or ENFILE => TracerErrorKind.Exhausted,
            EBUSY or ETXTBSY => TracerErrorKind.Busy,
            EISDIR or ENOEXEC => TracerErrorKind.NotExecutable,
            EINVAL => TracerErrorKind.InvalidArgument,
            ENOSYS => TracerErrorKind.Unsupported,
            _ => TracerErrorKind.Failed,
        };
    }

    internal static partial class Sys
    {
        [LibraryImport(Libraries.Libc, EntryPoint = "strerror")]
        private static partial nint StrError(int errorNumber);

        /// <summary>The C library's text for <paramref name="errorNumber"/> ("No such file or directory").</summary>
        internal static string DescribeError(int errorNumber)
        {
            // strerror's buffer is static, but glibc returns constant strings for known errors; unknown ones
            // are formatted into a per-thread buffer, which is fine for the one copy we take at once.
            var text = Marshal.PtrToStringUTF8(StrError(errorNumber));
            return string.IsNullOrEmpty(text) ? $"error {errorNumber}" : text;
        }

        /// <summary>
        /// Turns the errno of a failed call into the exception the ports promise, its kind judged here (ESRCH: the
        /// victim is gone, not a fault of the caller).
        /// </summary>
        internal static TracerException Failure(string what, int errorNumber) =>
            new($"{what}: {DescribeError(errorNumber)}", Errno.KindOf(errorNumber), errorNumber);

        /// <summary>The errno the last <c>SetLastError = true</c> call left behind.</summary>
        internal static int LastErrno => Marshal.GetLastPInvokeError();
    }
}
