namespace ProcHex.Ports;

/// <summary>
/// Why the OS would not let a tracer control a process (issue 22 item 3): each a fact the backend checked, so a
/// client (the CLI) can say the one thing that would help.
/// </summary>
public enum GrabRefusalKind
{
    /// <summary>Refused, and none of the facts the backend checks explains it (a security module, a user namespace).</summary>
    Unexplained,

    /// <summary>Another tracer holds the process (<see cref="GrabRefusal.TracerPid"/>); a process has one tracer at a time.</summary>
    AlreadyTraced,

    /// <summary>The process belongs to another user (or group), and the tracer lacks the privilege to trace it.</summary>
    AnotherUser,

    /// <summary>The process runs a set-user-id or set-group-id program (its ids differ), and the tracer lacks the privilege.</summary>
    SetId,

    /// <summary>The process made itself non-dumpable (prctl PR_SET_DUMPABLE 0), and the tracer lacks the privilege.</summary>
    NotDumpable,

    /// <summary>
    /// A system setting restricts tracing (<see cref="GrabRefusal.Setting"/>: Linux's kernel.yama.ptrace_scope 1 or 2, FreeBSD's
    /// security.bsd.unprivileged_proc_debug 0), and the tracer lacks the privilege it asks for.
    /// </summary>
    RestrictedBySetting,

    /// <summary>A system setting forbids all tracing until reboot (Linux's kernel.yama.ptrace_scope 3).</summary>
    TracingDisabled,
}

/// <summary>
/// A refused grab for control, with the facts behind it (issue 22 item 3). Carried by
/// <see cref="GrabException.Refusal"/> and <c>GrabFailedException.Refusal</c>.
/// </summary>
/// <param name="Kind">Which fact refused it.</param>
/// <param name="Setting">The system setting that decides who may trace ("kernel.yama.ptrace_scope"), null when the OS has none.</param>
/// <param name="SettingValue">Its value when the grab was refused ("1"), null when it could not be read or does not exist.</param>
/// <param name="CallerPrivileged">Whether the tracer had the privilege that overrides ownership (Linux: CAP_SYS_PTRACE in CapEff; FreeBSD: root); null when unknown.</param>
/// <param name="TracerPid">The pid of the tracer that already holds the process (<see cref="GrabRefusalKind.AlreadyTraced"/>).</param>
/// <param name="Privilege">The name of that privilege ("CAP_SYS_PTRACE", "root").</param>
public sealed record GrabRefusal(
    GrabRefusalKind Kind,
    string? Setting = null,
    string? SettingValue = null,
    bool? CallerPrivileged = null,
    int? TracerPid = null,
    string Privilege = "CAP_SYS_PTRACE");
