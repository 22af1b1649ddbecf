namespace ProcHex.Ports;

/// <summary>
/// An OS operation on a victim failed. <see cref="Kind"/> says what kind of failure it is, as the adapter that saw
/// the OS error judged it; <see cref="ErrorNumber"/> is that OS error (errno), for messages only: its numbers differ
/// between systems, so nothing outside an adapter decides on it.
/// </summary>
public class TracerException : Exception
{
    /// <summary>Creates the failure of an OS operation.</summary>
    /// <param name="message">What failed, for a person.</param>
    /// <param name="kind">What kind of failure, for decisions.</param>
    /// <param name="errorNumber">The OS error (errno), 0 when none.</param>
    /// <param name="innerException">The failure behind it.</param>
    public TracerException(string message, TracerErrorKind kind, int errorNumber = 0, Exception? innerException = null)
        : base(message, innerException)
    {
        Kind = kind;
        ErrorNumber = errorNumber;
    }

    /// <summary>Creates a <see cref="TracerException"/> with a generic message; prefer one that says what failed.</summary>
    public TracerException() : this("tracer operation failed") { }

    /// <summary>Creates a <see cref="TracerException"/>: <paramref name="message"/> says what failed and what to do about it.</summary>
    public TracerException(string message) : this(message, TracerErrorKind.Failed) { }

    /// <summary>Creates a <see cref="TracerException"/>: <paramref name="message"/> says what failed and what to do about it; <paramref name="innerException"/> is the failure behind it.</summary>
    public TracerException(string message, Exception innerException) : this(message, TracerErrorKind.Failed, 0, innerException) { }

    /// <summary>What kind of failure it is, as the adapter judged the OS error: decide on this.</summary>
    public TracerErrorKind Kind { get; }

    /// <summary>The OS error number (errno), for messages only: numbers differ between systems.</summary>
    public int ErrorNumber { get; }

    /// <summary>The victim no longer exists: not an error of the caller.</summary>
    public bool IsGone => Kind == TracerErrorKind.Gone;
}

/// <summary>The file could not be executed. The message is the reason only ("No such file or directory").</summary>
public class ProcessStartException : TracerException
{
    /// <summary>A program could not be started.</summary>
    /// <param name="reason">Why, in words.</param>
    /// <param name="kind">What kind of failure.</param>
    /// <param name="errorNumber">The OS error, 0 when none.</param>
    public ProcessStartException(string reason, TracerErrorKind kind = TracerErrorKind.Failed, int errorNumber = 0) : base(reason, kind, errorNumber) { }

    /// <summary>Creates a <see cref="ProcessStartException"/> with a generic message; prefer one that says what failed.</summary>
    public ProcessStartException() : this("cannot execute") { }

    /// <summary>Creates a <see cref="ProcessStartException"/>: <paramref name="message"/> says what failed and what to do about it; <paramref name="innerException"/> is the failure behind it.</summary>
    public ProcessStartException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>The process could not be grabbed. The message is the reason only ("permission denied: ...").</summary>
public class GrabException : TracerException
{
    /// <summary>A process could not be grabbed.</summary>
    /// <param name="reason">Why, in words.</param>
    /// <param name="kind">What kind of failure.</param>
    /// <param name="errorNumber">The OS error, 0 when none.</param>
    public GrabException(string reason, TracerErrorKind kind = TracerErrorKind.Failed, int errorNumber = 0) : base(reason, kind, errorNumber) { }

    /// <summary>A grab for control the OS refused, with the facts that refused it (issue 22 item 3).</summary>
    public GrabException(string reason, GrabRefusal refusal, int errorNumber)
        : base(reason, refusal?.Kind == GrabRefusalKind.AlreadyTraced ? TracerErrorKind.Busy : TracerErrorKind.PermissionDenied, errorNumber) =>
        Refusal = refusal;

    /// <summary>Why the OS refused control, when it did (permission, policy, another tracer); null for other failures.</summary>
    public GrabRefusal? Refusal { get; }

    /// <summary>Creates a <see cref="GrabException"/> with a generic message; prefer one that says what failed.</summary>
    public GrabException() : this("cannot grab") { }

    /// <summary>Creates a <see cref="GrabException"/>: <paramref name="message"/> says what failed and what to do about it; <paramref name="innerException"/> is the failure behind it.</summary>
    public GrabException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>
/// A function could not be called in the victim (an inferior call, e.g. a GNU indirect function's resolver): it
/// faulted, did not return in time, the victim was running, or the backend cannot make such calls. The victim's
/// registers and stack are as they were before the call (unless it died).
/// </summary>
public class InferiorCallException : TracerException
{
    /// <summary>A call run inside the victim (an IFUNC resolver) failed.</summary>
    /// <param name="message">What failed.</param>
    /// <param name="kind">What kind of failure.</param>
    /// <param name="errorNumber">The OS error, 0 when none.</param>
    public InferiorCallException(string message, TracerErrorKind kind = TracerErrorKind.Failed, int errorNumber = 0) : base(message, kind, errorNumber) { }

    /// <summary>Creates a <see cref="InferiorCallException"/> with a generic message; prefer one that says what failed.</summary>
    public InferiorCallException() : this("the call in the victim failed") { }

    /// <summary>Creates a <see cref="InferiorCallException"/>: <paramref name="message"/> says what failed and what to do about it; <paramref name="innerException"/> is the failure behind it.</summary>
    public InferiorCallException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>
/// The program or process is not x86-64 (issue 17 item 4): refused before anything is written into it. The message
/// is the reason only ("unsupported architecture: ELF32 i386 ...").
/// </summary>
public class ForeignArchitectureException : TracerException
{
    /// <summary>The program or process is not x86-64.</summary>
    /// <param name="architecture">What it is, in words ("ELF64 aarch64").</param>
    public ForeignArchitectureException(string architecture)
        : base($"unsupported architecture: {architecture}; ProcHex controls x86-64 processes only", TracerErrorKind.Unsupported) => Architecture = architecture;

    /// <summary>Creates a <see cref="ForeignArchitectureException"/> with a generic message; prefer one that says what failed.</summary>
    public ForeignArchitectureException() : this("unknown") { }

    /// <summary>Creates a <see cref="ForeignArchitectureException"/>: <paramref name="message"/> says what failed and what to do about it; <paramref name="innerException"/> is the failure behind it.</summary>
    public ForeignArchitectureException(string message, Exception innerException)
        : base(message, TracerErrorKind.Unsupported, 0, innerException) => Architecture = "unknown";

    /// <summary>What it is: "ELF32 i386", "x32 (ELF32 x86-64)", "ELF64 aarch64"...</summary>
    public string Architecture { get; }
}
