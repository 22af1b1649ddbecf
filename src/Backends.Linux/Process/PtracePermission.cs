using System.Globalization;
using ProcHex.Ports;

namespace ProcHex.Backends.Linux;

/// <summary>
/// Why the kernel refused PTRACE_SEIZE (issue 22 item 3), told from the facts it decides on, in its order
/// (kernel/ptrace.c __ptrace_may_access, then Yama): another tracer; Yama's scope 3; CAP_SYS_PTRACE overriding the
/// rest; the caller's real uid and gid against the target's real, effective and saved ids; the target's dumpable
/// flag; Yama's scopes 1 and 2. What none of these explains is a security module's or a user namespace's doing.
/// </summary>
internal static class PtracePermission
{
    /// <summary>CAP_SYS_PTRACE is capability 19 (include/uapi/linux/capability.h).</summary>
    private const int CapSysPtrace = 19;

    internal const string ScopeSetting = "kernel.yama.ptrace_scope";

    /// <summary>What the kernel decides a seize on, read just after it refused one. Owner thread (thread credentials).</summary>
    internal readonly record struct Facts(
        int TracerPid,
        int? Scope,
        bool? CallerHasCapability,
        IReadOnlyList<uint>? CallerUids,
        IReadOnlyList<uint>? CallerGids,
        IReadOnlyList<uint>? TargetUids,
        IReadOnlyList<uint>? TargetGids,
        uint? ProcOwner);

    public static Facts Read(ILinuxKernel kernel, int pid) => new(
        kernel.TracerPid(pid),
        kernel.PtraceScope(),
        kernel.CallerStatusField("CapEff") is { } capEff && ulong.TryParse(capEff, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var caps)
            ? (caps & (1UL << CapSysPtrace)) != 0
            : null,
        Ids(kernel.CallerStatusField("Uid")),
        Ids(kernel.CallerStatusField("Gid")),
        Ids(kernel.StatusField(pid, "Uid")),
        Ids(kernel.StatusField(pid, "Gid")),
        kernel.ProcessOwner(pid));

    /// <summary>The refusal and the reason text a grab failure carries ("permission denied: ...").</summary>
    public static (GrabRefusal Refusal, string Reason) Explain(int pid, Facts facts)
    {
        var scope = facts.Scope?.ToString(CultureInfo.InvariantCulture);
        var cap = facts.CallerHasCapability;
        GrabRefusal Refusal(GrabRefusalKind kind, int? tracer = null) => new(kind, ScopeSetting, scope, cap, tracer);
        var lacking = cap == false ? " and this tracer lacks CAP_SYS_PTRACE" : string.Empty;

        if (facts.TracerPid != 0)
        {
            return (Refusal(GrabRefusalKind.AlreadyTraced, facts.TracerPid), $"already traced by pid {facts.TracerPid}");
        }

        if (facts.Scope == 3)
        {
            return (Refusal(GrabRefusalKind.TracingDisabled), $"permission denied: {ScopeSetting} is 3, so no process may be traced until reboot");
        }

        if (cap != true && facts.CallerUids is [var callerUid, ..] && facts.CallerGids is [var callerGid, ..]
            && facts.TargetUids is [var ruid, var euid, var suid, ..] && facts.TargetGids is [var rgid, var egid, var sgid, ..])
        {
            if (ruid != callerUid || rgid != callerGid)
            {
                var whose = ruid != callerUid ? $"uid {ruid}" : $"gid {rgid}";
                var ours = ruid != callerUid ? $"uid {callerUid}" : $"gid {callerGid}";
                var which = cap == false ? ", which lacks CAP_SYS_PTRACE" : string.Empty;
                return (Refusal(GrabRefusalKind.AnotherUser), $"permission denied: pid {pid} belongs to {whose}, not to this tracer ({ours}{which})");
            }

            if (euid != ruid || suid != ruid || egid != rgid || sgid != rgid)
            {
                return (Refusal(GrabRefusalKind.SetId),
                    $"permission denied: pid {pid} runs a set-id program (uids {ruid}/{euid}/{suid}, gids {rgid}/{egid}/{sgid}){lacking}");
            }

            if (facts.ProcOwner is { } owner && owner != euid)
            {
                return (Refusal(GrabRefusalKind.NotDumpable), $"permission denied: pid {pid} is not dumpable (prctl PR_SET_DUMPABLE 0){lacking}");
            }
        }

        if (cap != true && facts.Scope is 1 or 2)
        {
            var rule = facts.Scope == 1 ? "only a process's ancestors may trace it" : "only tracers with CAP_SYS_PTRACE may trace";
            return (Refusal(GrabRefusalKind.RestrictedBySetting), $"permission denied: {ScopeSetting} is {scope} ({rule}){lacking}");
        }

        var known = $"{ScopeSetting} {scope ?? "absent (no Yama)"}, CAP_SYS_PTRACE {(cap switch { true => "held", false => "not held", null => "unknown" })}";
        return (Refusal(GrabRefusalKind.Unexplained),
            $"permission denied by a security module or a user namespace, not by ownership or Yama ({known})");
    }

    /// <summary>The ids of a "Uid:" or "Gid:" line: real, effective, saved, file system.</summary>
    private static uint[]? Ids(string? line)
    {
        if (line is null)
        {
            return null;
        }

        var fields = line.Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries);
        var ids = new uint[fields.Length];
        for (var i = 0; i < fields.Length; i++)
        {
            if (!uint.TryParse(fields[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out ids[i]))
            {
                return null;
            }
        }

        return ids;
    }
}
