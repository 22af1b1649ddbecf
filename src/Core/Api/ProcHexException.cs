namespace ProcHex;

/// <summary>A ProcHex call failed. The message is written for the person running the tracer.</summary>
public class ProcHexException : Exception
{
    /// <summary>Creates a <see cref="ProcHexException"/>: <paramref name="message"/> says what failed and what to do about it; <paramref name="innerException"/> is the failure behind it.</summary>
    public ProcHexException(string message, Exception? innerException = null) : base(message, innerException) { }

    /// <summary>Creates a <see cref="ProcHexException"/> with a generic message; prefer one that says what failed.</summary>
    public ProcHexException() : this("process control failed") { }

    /// <summary>Creates a <see cref="ProcHexException"/>: <paramref name="message"/> says what failed and what to do about it.</summary>
    public ProcHexException(string message) : this(message, null) { }

    /// <summary>What kind of failure it was, when a backend failure is behind it: decide on this.</summary>
    public Ports.TracerErrorKind Kind { get; init; }

    /// <summary>The OS error number behind the failure, when there is one: for messages, not for decisions.</summary>
    public int ErrorNumber { get; init; }

    /// <summary>A backend failure reaches the client with the backend's message, kind and errno.</summary>
    internal static ProcHexException FromBackend(Ports.TracerException ex) => new(ex.Message, ex) { Kind = ex.Kind, ErrorNumber = ex.ErrorNumber };
}

/// <summary>Create failed (S2): "failed to execute FILE: REASON" or "failed to control pid N: ...".</summary>
public sealed class CreateFailedException : ProcHexException
{
    /// <summary>Creates a <see cref="CreateFailedException"/>: <paramref name="message"/> says what failed and what to do about it; <paramref name="innerException"/> is the failure behind it.</summary>
    public CreateFailedException(string message, Exception? innerException = null) : base(message, innerException) { }

    /// <summary>Creates a <see cref="CreateFailedException"/> with a generic message; prefer one that says what failed.</summary>
    public CreateFailedException() : this("create failed") { }

    /// <summary>Creates a <see cref="CreateFailedException"/>: <paramref name="message"/> says what failed and what to do about it.</summary>
    public CreateFailedException(string message) : this(message, null) { }
}

/// <summary>Grab failed (S3): "failed to grab pid N: REASON" or "failed to control pid N: ...".</summary>
public sealed class GrabFailedException : ProcHexException
{
    /// <summary>Creates a <see cref="GrabFailedException"/>: <paramref name="message"/> says what failed and what to do about it; <paramref name="innerException"/> is the failure behind it.</summary>
    public GrabFailedException(string message, Exception? innerException = null) : base(message, innerException) { }

    /// <summary>Creates a <see cref="GrabFailedException"/> with a generic message; prefer one that says what failed.</summary>
    public GrabFailedException() : this("grab failed") { }

    /// <summary>Creates a <see cref="GrabFailedException"/>: <paramref name="message"/> says what failed and what to do about it.</summary>
    public GrabFailedException(string message) : this(message, null) { }

    /// <summary>
    /// Why the OS refused control, when it did (issue 22 item 3): another user's, set-id or non-dumpable process, a
    /// tracing policy (kernel.yama.ptrace_scope), or another tracer. Null for every other failure.
    /// </summary>
    public Ports.GrabRefusal? Refusal { get; init; }
}

/// <summary>
/// Create or grab refused a program or process that is not x86-64 (ELF32 i386, x32, aarch64...), before anything was
/// written into it: a created one is killed and reaped, a grabbed one left running untouched (issue 17 item 4).
/// The message is "failed to execute FILE: unsupported architecture: ..." or "failed to grab pid N: unsupported architecture: ...".
/// </summary>
public sealed class UnsupportedArchitectureException : ProcHexException
{
    /// <summary>Creates the exception for a refused program or process.</summary>
    /// <param name="message">"failed to execute FILE: unsupported architecture: ..." or the grab's equivalent.</param>
    /// <param name="architecture">What it is, in words ("ELF64 aarch64").</param>
    /// <param name="innerException">The backend's failure behind it.</param>
    public UnsupportedArchitectureException(string message, string architecture, Exception? innerException = null)
        : base(message, innerException) => Architecture = architecture;

    /// <summary>Creates a <see cref="UnsupportedArchitectureException"/> with a generic message; prefer one that says what failed.</summary>
    public UnsupportedArchitectureException() : this("unsupported architecture", "unknown") { }

    /// <summary>Creates a <see cref="UnsupportedArchitectureException"/>: <paramref name="message"/> says what failed and what to do about it.</summary>
    public UnsupportedArchitectureException(string message) : this(message, "unknown") { }

    /// <summary>Creates a <see cref="UnsupportedArchitectureException"/>: <paramref name="message"/> says what failed and what to do about it; <paramref name="innerException"/> is the failure behind it.</summary>
    public UnsupportedArchitectureException(string message, Exception innerException) : this(message, "unknown", innerException) { }

    /// <summary>What it is: "ELF32 i386", "x32 (ELF32 x86-64)", "ELF64 aarch64"...</summary>
    public string Architecture { get; }
}

/// <summary>The handle is unknown to this session or was already released (S23).</summary>
public sealed class InvalidHandleException : ProcHexException
{
    /// <summary>Creates a <see cref="InvalidHandleException"/>: <paramref name="message"/> says what failed and what to do about it.</summary>
    public InvalidHandleException(string message) : base(message) { }

    /// <summary>Creates a <see cref="InvalidHandleException"/> with a generic message; prefer one that says what failed.</summary>
    public InvalidHandleException() : this("invalid process handle") { }

    /// <summary>Creates a <see cref="InvalidHandleException"/>: <paramref name="message"/> says what failed and what to do about it; <paramref name="innerException"/> is the failure behind it.</summary>
    public InvalidHandleException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>
/// The handle's process has ended and its pid now names another process (issue 17 item 3): the handle is stale and
/// refuses to read the newcomer. Grab the pid again to hold the new process.
/// </summary>
public sealed class StaleHandleException : ProcHexException
{
    /// <summary>Creates a <see cref="StaleHandleException"/>: <paramref name="message"/> says what failed and what to do about it.</summary>
    public StaleHandleException(string message) : base(message) { }

    /// <summary>Creates a <see cref="StaleHandleException"/> with a generic message; prefer one that says what failed.</summary>
    public StaleHandleException() : this("stale process handle") { }

    /// <summary>Creates a <see cref="StaleHandleException"/>: <paramref name="message"/> says what failed and what to do about it; <paramref name="innerException"/> is the failure behind it.</summary>
    public StaleHandleException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>Lock misuse (S21): locking a handle twice, or unlocking one that is not held.</summary>
public sealed class LockMisuseException : ProcHexException
{
    /// <summary>Creates a <see cref="LockMisuseException"/>: <paramref name="message"/> says what failed and what to do about it.</summary>
    public LockMisuseException(string message) : base(message) { }

    /// <summary>Creates a <see cref="LockMisuseException"/> with a generic message; prefer one that says what failed.</summary>
    public LockMisuseException() : this("lock misuse") { }

    /// <summary>Creates a <see cref="LockMisuseException"/>: <paramref name="message"/> says what failed and what to do about it; <paramref name="innerException"/> is the failure behind it.</summary>
    public LockMisuseException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>The victim's lifecycle does not allow this operation now (a Stateless trigger was refused).</summary>
public sealed class IllegalTransitionException : ProcHexException
{
    /// <summary>Creates a <see cref="IllegalTransitionException"/>: <paramref name="message"/> says what failed and what to do about it.</summary>
    public IllegalTransitionException(string message) : base(message) { }

    /// <summary>Creates a <see cref="IllegalTransitionException"/> with a generic message; prefer one that says what failed.</summary>
    public IllegalTransitionException() : this("illegal transition") { }

    /// <summary>Creates a <see cref="IllegalTransitionException"/>: <paramref name="message"/> says what failed and what to do about it; <paramref name="innerException"/> is the failure behind it.</summary>
    public IllegalTransitionException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>An <c>object`symbol</c> could not be found in the victim.</summary>
public sealed class SymbolNotFoundException : ProcHexException
{
    /// <summary>Creates a <see cref="SymbolNotFoundException"/>: <paramref name="message"/> says what failed and what to do about it.</summary>
    public SymbolNotFoundException(string message) : base(message) { }

    /// <summary>Creates a <see cref="SymbolNotFoundException"/> with a generic message; prefer one that says what failed.</summary>
    public SymbolNotFoundException() : this("symbol not found") { }

    /// <summary>Creates a <see cref="SymbolNotFoundException"/>: <paramref name="message"/> says what failed and what to do about it; <paramref name="innerException"/> is the failure behind it.</summary>
    public SymbolNotFoundException(string message, Exception innerException) : base(message, innerException) { }
}
