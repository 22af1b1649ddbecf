using ProcHex.Ports;

internal static partial class Interop
{
    /// <summary>
    /// FreeBSD errno values (sys/sys/errno.h). 1–34 are the historical V7 numbers Linux shares; the rest differ
    /// (ELOOP is 40 on Linux, 62 here), so messages are written out here instead of asking the host's strerror,
    /// which would be wrong when the fake kernel runs on Linux.
    /// </summary>
    internal static class Errno
    {
        internal const int EPERM = 1;
        internal const int ENOENT = 2;
        internal const int ESRCH = 3;
        internal const int EINTR = 4;
        internal const int EIO = 5;
        internal const int ENOEXEC = 8;
        internal const int ECHILD = 10;
        internal const int ENOMEM = 12;
        internal const int EACCES = 13;
        internal const int EFAULT = 14;
        internal const int EBUSY = 16;
        internal const int ENOTDIR = 20;
        internal const int EISDIR = 21;
        internal const int EINVAL = 22;
        internal const int ENFILE = 23;
        internal const int EMFILE = 24;
        internal const int EAGAIN = 35;
        internal const int ENOTSUP = 45;
        internal const int ELOOP = 62;
        internal const int ENAMETOOLONG = 63;
        internal const int ENOSYS = 78;

        /// <summary>The kind of failure an errno is: the one place this backend's errno numbers are judged.</summary>
        internal static TracerErrorKind KindOf(int errno) => errno switch
        {
            EPERM or EACCES => TracerErrorKind.PermissionDenied,
            ENOENT or ENOTDIR => TracerErrorKind.NotFound,
            ESRCH or ECHILD => TracerErrorKind.Gone,
            EINTR => TracerErrorKind.Interrupted,
            EIO or EFAULT => TracerErrorKind.BadAddress,
            ENOEXEC or EISDIR => TracerErrorKind.NotExecutable,
            ENOMEM or EAGAIN or EMFILE or ENFILE => TracerErrorKind.Exhausted,
            EBUSY => TracerErrorKind.Busy,
            EINVAL => TracerErrorKind.InvalidArgument,
            ENOSYS => TracerErrorKind.Unsupported,
            _ => TracerErrorKind.Failed,
        };

        internal static string Describe(int errno) => errno switch
        {
            EPERM => "Operation not permitted",
            ENOENT => "No such file or directory",
            ESRCH => "No such process",
            EINTR => "Interrupted system call",
            EIO => "Input/output error",
            ENOEXEC => "Exec format error",
            ECHILD => "No child processes",
            ENOMEM => "Cannot allocate memory",
            EACCES => "Permission denied",
            EFAULT => "Bad address",
            EBUSY => "Device busy",
            ENOTDIR => "Not a directory",
            EISDIR => "Is a directory",
            EINVAL => "Invalid argument",
            ENFILE => "Too many open files in system",
            EMFILE => "Too many open files",
            EAGAIN => "Resource temporarily unavailable",
            ELOOP => "Too many levels of symbolic links",
            ENAMETOOLONG => "File name too long",
            ENOSYS => "Function not implemented",
            _ => $"errno {errno}",
        };
    }
}
