namespace ProcHex.Ports;

/// <summary>
/// An OS operation on a victim failed. <see cref="Kind"/> says what kind of failure it is, as the adapter that saw
/// the OS error judged it; <see cref="ErrorNumber"/> is that OS error (errno), for messages only: its numbers differ
/// between systems, so nothing outside an adapter decides on it.
/// </summary>
public class TracerException : Exception
{
    public TracerException(string message, TracerErrorKind kind, int errorNumber = 0, Exception? innerException = null)
        : base(message, innerException)
    {
        Kind = kind;
        ErrorNumber = errorNumber;
    }

    public TracerException() : this("tracer operation failed") { }

    public TracerException(string message) : this(message, TracerErrorKind.Failed) { }

    public TracerException(string message, Exception innerException) : this(message, TracerErrorKind.Failed, 0, innerException) { }

    public TracerErrorKind Kind { get; }

    public int ErrorNumber { get; }

    /// <summary>The victim no longer exists: not an error of the caller.</summary>
    public bool IsGone => Kind == TracerErrorKind.Gone;
}

/// <summary>The file could not be executed. The message is the reason only ("No such file or directory").</summary>
public class ProcessStartException : TracerException
{
    public ProcessStartException(string reason, TracerErrorKind kind = TracerErrorKind.Failed, int errorNumber = 0) : base(reason, kind, errorNumber) { }

    public ProcessStartException() : this("cannot execute") { }

    public ProcessStartException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>The process could not be grabbed. The message is the reason only ("permission denied: ...").</summary>
public class GrabException : TracerException
{
    public GrabException(string reason, TracerErrorKind kind = TracerErrorKind.Failed, int errorNumber = 0) : base(reason, kind, errorNumber) { }

    /// <summary>A grab for control the OS refused, with the facts that refused it (issue 22 item 3).</summary>
    public GrabException(string reason, GrabRefusal refusal, int errorNumber)
        : base(reason, refusal?.Kind == GrabRefusalKind.AlreadyTraced ? TracerErrorKind.Busy : TracerErrorKind.PermissionDenied, errorNumber) =>
        Refusal = refusal;

    /// <summary>Why the OS refused control, when it did (permission, policy, another tracer); null for other failures.</summary>
    public GrabRefusal? Refusal { get; }

    public GrabException() : this("cannot grab") { }

    public GrabException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>
/// A function could not be called in the victim (an inferior call, e.g. a GNU indirect function's resolver): it
/// faulted, did not return in time, the victim was running, or the backend cannot make such calls. The victim's
/// registers and stack are as they were before the call (unless it died).
/// </summary>
public class InferiorCallException : TracerException
{
    public InferiorCallException(string message, TracerErrorKind kind = TracerErrorKind.Failed, int errorNumber = 0) : base(message, kind, errorNumber) { }

    public InferiorCallException() : this("the call in the victim failed") { }

    public InferiorCallException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>
/// The program or process is not x86-64 (issue 17 item 4): refused before anything is written into it. The message
/// is the reason only ("unsupported architecture: ELF32 i386 ...").
/// </summary>
public class ForeignArchitectureException : TracerException
{
    public ForeignArchitectureException(string architecture)
        : base($"unsupported architecture: {architecture}; ProcHex controls x86-64 processes only", TracerErrorKind.Unsupported) => Architecture = architecture;

    public ForeignArchitectureException() : this("unknown") { }

    public ForeignArchitectureException(string message, Exception innerException)
        : base(message, TracerErrorKind.Unsupported, 0, innerException) => Architecture = "unknown";

    /// <summary>What it is: "ELF32 i386", "x32 (ELF32 x86-64)", "ELF64 aarch64"...</summary>
    public string Architecture { get; }
}
