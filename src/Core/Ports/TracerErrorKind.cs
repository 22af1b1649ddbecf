namespace ProcHex.Ports;

/// <summary>
/// What kind of failure a <see cref="TracerException"/> is, decided by the adapter that saw the OS error. The core,
/// the public API and the CLI decide on kinds; the raw error number is kept only for messages.
/// </summary>
public enum TracerErrorKind
{
    /// <summary>A failure with no more specific kind.</summary>
    Failed,

    /// <summary>The process or thread no longer exists (or is no longer ours to control).</summary>
    Gone,

    /// <summary>A call was interrupted before it did anything; trying again is safe.</summary>
    Interrupted,

    /// <summary>The OS refused: another user's process, a security policy, or missing privileges.</summary>
    PermissionDenied,

    /// <summary>The file, process or object named does not exist.</summary>
    NotFound,

    /// <summary>Nothing is mapped (or accessible) at the address.</summary>
    BadAddress,

    /// <summary>The target is in a state that does not allow the operation now (running, already traced).</summary>
    Busy,

    /// <summary>The request itself is invalid.</summary>
    InvalidArgument,

    /// <summary>The OS or this backend does not support the operation or the program.</summary>
    Unsupported,

    /// <summary>The file is not a program the OS can run.</summary>
    NotExecutable,

    /// <summary>The OS ran out of a resource (memory, processes).</summary>
    Exhausted,
}
