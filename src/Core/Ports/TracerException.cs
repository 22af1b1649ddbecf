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
/// A function could not be called in the victim (an inferior call, e.g. a GNU indirect function's resolver): it
/// faulted, did not return in time, the victim was running, or the backend cannot make such calls. The victim's
/// registers and stack are as they were before the call (unless it died).
/// </summary>
public class InferiorCallException : TracerException
{
    public InferiorCallException(string message, int errorNumber = 0) : base(message, errorNumber) { }

    public InferiorCallException() : this("the call in the victim failed") { }

    public InferiorCallException(string message, Exception innerException) : base(message, innerException) { }
}
