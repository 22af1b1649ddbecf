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

    /// <summary>
    /// A grab failure, with what to do about it when it was a matter of permission: for a refusal whose cause the
    /// backend found (issue 22 item 3), the one thing that helps with that cause; else the general hint.
    /// </summary>
    public static CliFailure FromGrab(GrabFailedException ex) =>
        new(Failed, ex.Refusal is { } refusal ? $"{ex.Message} ({WhatToDo(refusal)})" : WithPermissionHint(ex.Message, ex.Kind));

    /// <summary>One sentence a user can act on, per refusal kind, for the OS whose setting refused it.</summary>
    public static string WhatToDo(GrabRefusal refusal)
    {
        ArgumentNullException.ThrowIfNull(refusal);
        var privileged = refusal.Privilege == "root" ? "run prochex as root" : $"run prochex as root or with {refusal.Privilege}";
        return refusal.Kind switch
        {
            GrabRefusalKind.AlreadyTraced =>
                $"a process has one tracer at a time: end or detach {(refusal.TracerPid is { } tracer ? $"pid {tracer}" : "its tracer")} first, or read it without control with prochex inspect",
            GrabRefusalKind.AnotherUser => $"{privileged}, or as the user the process runs as",
            GrabRefusalKind.SetId => $"a set-id program refuses tracers of its own user: {privileged}",
            GrabRefusalKind.NotDumpable => $"a non-dumpable process refuses tracers of its own user: {privileged}",
            GrabRefusalKind.RestrictedBySetting when refusal.Setting == "kernel.yama.ptrace_scope" && refusal.SettingValue == "1" =>
                $"start the program under prochex run instead, {privileged}, or lower the setting: sysctl kernel.yama.ptrace_scope=0",
            GrabRefusalKind.RestrictedBySetting when refusal.Setting == "kernel.yama.ptrace_scope" =>
                $"{privileged}, or lower the setting: sysctl kernel.yama.ptrace_scope=0",
            GrabRefusalKind.RestrictedBySetting => $"{privileged}, or allow it: sysctl {refusal.Setting}=1",
            GrabRefusalKind.TracingDisabled => $"{refusal.Setting} {refusal.SettingValue} cannot be lowered while the system runs: reboot with a lower value",
            GrabRefusalKind.Unexplained when refusal.Setting == "security.bsd.unprivileged_proc_debug" =>
                "run prochex as root, or as the process's user with security.bsd.unprivileged_proc_debug=1 (not for a set-id program)",
            _ => "not ownership nor a tracing setting: check the security module's ptrace rules (SELinux, AppArmor) and whether prochex runs in the process's user namespace",
        };
    }

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
