using ProcHex.Ports;

namespace ProcHex.Backends.Fake;

/// <summary>The signal numbers the fake kernel knows, with Linux's values so logs read like the real thing.</summary>
public static class Signals
{
    public const int Trap = 5;
    public const int Kill = 9;
    public const int Segv = 11;
    public const int Term = 15;
    public const int Cont = 18;
    public const int Stop = 19;
}

/// <summary>The error numbers the fake reports, with Linux's values.</summary>
public static class Errno
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int ESRCH = 3;
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int EACCES = 13;
    public const int EBUSY = 16;

    /// <summary>The kind of failure an errno is: the one place this backend's errno numbers are judged.</summary>
    public static TracerErrorKind KindOf(int errno) => errno switch
    {
        EPERM or EACCES => TracerErrorKind.PermissionDenied,
        ENOENT => TracerErrorKind.NotFound,
        ESRCH => TracerErrorKind.Gone,
        EINTR => TracerErrorKind.Interrupted,
        EIO => TracerErrorKind.BadAddress,
        EBUSY => TracerErrorKind.Busy,
        _ => TracerErrorKind.Failed,
    };

    public static string Describe(int errno) => errno switch
    {
        EPERM => "Operation not permitted",
        ENOENT => "No such file or directory",
        ESRCH => "No such process",
        EINTR => "Interrupted system call",
        EIO => "Input/output error",
        EACCES => "Permission denied",
        EBUSY => "Device or resource busy",
        _ => $"errno {errno}",
    };

    public static string Name(int errno) => errno switch
    {
        EPERM => "EPERM",
        ENOENT => "ENOENT",
        ESRCH => "ESRCH",
        EINTR => "EINTR",
        EIO => "EIO",
        EACCES => "EACCES",
        EBUSY => "EBUSY",
        _ => errno.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
