namespace ProcHex.Ports;

/// <summary>
/// An OS operation on a victim failed. <see cref="ErrorNumber"/> is the OS error (errno) when there is one.
/// </summary>
public class TracerException : Exception
{
    public TracerException(string message, int errorNumber = 0, Exception? innerException = null)
        : base(message, innerException) => ErrorNumber = errorNumber;

    public TracerException() : this("tracer operation failed") { }

    public TracerException(string message) : this(message, 0) { }

    public TracerException(string message, Exception innerException) : this(message, 0, innerException) { }

    public int ErrorNumber { get; }

    /// <summary>The victim no longer exists (ESRCH and friends): not an error of the caller.</summary>
    public bool IsGone { get; init; }
}

/// <summary>The file could not be executed. The message is the reason only ("No such file or directory").</summary>
public class ProcessStartException : TracerException
{
    public ProcessStartException(string reason, int errorNumber = 0) : base(reason, errorNumber) { }

    public ProcessStartException() : this("cannot execute") { }

    public ProcessStartException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>The process could not be grabbed. The message is the reason only ("permission denied: ...").</summary>
public class GrabException : TracerException
{
    public GrabException(string reason, int errorNumber = 0) : base(reason, errorNumber) { }

    public GrabException() : this("cannot grab") { }

    public GrabException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>
/// The program or process is not x86-64 (issue 17 item 4): refused before anything is written into it. The message
/// is the reason only ("unsupported architecture: ELF32 i386 ...").
/// </summary>
public class ForeignArchitectureException : TracerException
{
    public ForeignArchitectureException(string architecture)
        : base($"unsupported architecture: {architecture}; ProcHex controls x86-64 processes only", ENOEXEC) => Architecture = architecture;

    public ForeignArchitectureException() : this("unknown") { }

    public ForeignArchitectureException(string message, Exception innerException) : base(message, ENOEXEC, innerException) => Architecture = "unknown";

    /// <summary>What it is: "ELF32 i386", "x32 (ELF32 x86-64)", "ELF64 aarch64"...</summary>
    public string Architecture { get; }

    private const int ENOEXEC = 8;
}
