namespace ProcHex.Cli;

/// <summary>Ends a command with one line on stderr and <see cref="ExitCode"/> (2 usage, 1 failure).</summary>
internal sealed class CliFailure : Exception
{
    public CliFailure(int exitCode, string message) : base(message) => ExitCode = exitCode;

    public CliFailure() : this(1, "failed")
    {
    }

    public CliFailure(string message) : this(1, message)
    {
    }

    public CliFailure(string message, Exception innerException) : base(message, innerException) => ExitCode = 1;

    public int ExitCode { get; }

    public const int Usage = 2;

    public const int Failed = 1;

    /// <summary>A grab failure, with what to do about it when it was a matter of permission.</summary>
    public static CliFailure FromGrab(GrabFailedException ex) => new(Failed, WithPermissionHint(ex.Message, ex.Kind));

    /// <summary>
    /// Adds what to do about a permission failure, for the OS prochex runs on, unless the message already says it:
    /// on Linux, tracing another user's process (or a non-child under Yama) needs root or CAP_SYS_PTRACE, or a lower
    /// kernel.yama.ptrace_scope; on FreeBSD, root or security.bsd.unprivileged_proc_debug=1.
    /// </summary>
    public static string WithPermissionHint(string message, TracerErrorKind kind = TracerErrorKind.Failed)
    {
        var permission = kind == TracerErrorKind.PermissionDenied ||
            message.Contains("permission", StringComparison.OrdinalIgnoreCase) ||
            message.Contains("denied", StringComparison.OrdinalIgnoreCase) ||
            message.Contains("not permitted", StringComparison.OrdinalIgnoreCase);
        if (!permission || message.Contains("root", StringComparison.Ordinal))
        {
            return message;
        }

        return message + (OperatingSystem.IsFreeBSD()
            ? " (run prochex as root, or as the victim's user with security.bsd.unprivileged_proc_debug=1)"
            : " (run prochex as root or with CAP_SYS_PTRACE; to trace non-children, lower kernel.yama.ptrace_scope)");
    }
}
