using ProcHex.Ports;

namespace ProcHex.Backends.Fake;

/// <summary>The signal numbers the fake kernel knows, with Linux's values so logs read like the real thing.</summary>
public static class Signals
{
    /// <summary>SIGTRAP: a breakpoint or single-step.</summary>
    public const int Trap = 5;
    /// <summary>SIGKILL.</summary>
    public const int Kill = 9;
    /// <summary>SIGSEGV.</summary>
    public const int Segv = 11;
    /// <summary>SIGTERM.</summary>
    public const int Term = 15;
    /// <summary>SIGCONT.</summary>
    public const int Cont = 18;
    /// <summary>SIGSTOP.</summary>
    public const int Stop = 19;
}

/// <summary>The error numbers the fake reports, with Linux's values.</summary>
public static class Errno
{
    /// <summary>Operation not permitted.</summary>
    public const int EPERM = 1;
    /// <summary>No such file or directory.</summary>
    public const int ENOENT = 2;
    /// <summary>No such process.</summary>
    public const int ESRCH = 3;
    /// <summary>Interrupted system call.</summary>
    public const int EINTR = 4;
    /// <summary>I/O error (a short read of memory).</summary>
    public const int EIO = 5;
    /// <summary>Permission denied.</summary>
    public const int EACCES = 13;
    /// <summary>Device or resource busy (already traced).</summary>
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

    /// <summary>The error's description, as strerror gives it.</summary>
    /// <param name="errno">The error number.</param>
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

    /// <summary>The error's symbolic name (EPERM, ESRCH...).</summary>
    /// <param name="errno">The error number.</param>
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
