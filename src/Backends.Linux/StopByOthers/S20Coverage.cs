namespace ProcHex.Backends.Linux;

/// <summary>
/// The transitions of <see cref="StopByOthers"/> a run can cover: every phase change the machine makes, and every
/// kind of action each of its events can ask for (read off its code). The linux simulation reports which of them
/// its seeds hit; the exhaustive interleaving tests (StopByOthersMachineTests) prove they reach every one.
/// </summary>
internal static class S20Coverage
{
    public static IReadOnlyList<string> All { get; } =
    [
        "phase Quiet->Reported",
        "phase Reported->AwaitingResume",
        "phase AwaitingResume->Quiet",
        "phase AwaitingResume->Reported",
        "phase Reported->Quiet",
        "GroupStopReported: Park",
        "GroupStopReported: ReportStopped",
        "TrapStopReported: Resume",
        "TrapStopReported: Park",
        "TrapStopReported: RestoreOptions",
        "TrapStopReported: ReportResumed",
        "AwaitResume: DropExitKill",
        "AwaitResume: Park",
        "AwaitResume: RestoreOptions",
        "AwaitResume: ReportResumed",
        "CoreResumed: Park",
        "CoreResumed: ReportStopped",
        "ThreadGone: RestoreOptions",
        "ThreadGone: ReportResumed",
        "ThreadGone: ReportStopped",
    ];

    /// <summary>
    /// Transitions only a failed PTRACE_LISTEN of a live member reaches: the machine parks a member whose listen
    /// failed at the next chance, so a SIGCONT still wakes it. The kernel fails a listen only on a thread that is not
    /// in an event stop (ptrace(2), kernel/ptrace.c ptrace_request PTRACE_LISTEN: EIO), and a member is always in its
    /// group-stop report when parked; no model reaches them, and they stay as a guard.
    /// </summary>
    public static IReadOnlyList<string> Defensive { get; } =
    [
        "TrapStopReported: Park",
        "AwaitResume: Park",
    ];

    /// <summary>
    /// Transitions that need a stop-all (the adapter collecting every thread's stop, for a breakpoint or the core's
    /// request) in the middle of someone else's stop: the linux simulation reaches them; the exhaustive interleaving
    /// model has no stop-all.
    /// </summary>
    public static IReadOnlyList<string> ThroughStopAll { get; } =
    [
        "phase AwaitingResume->Reported",
        "CoreResumed: Park",
        "CoreResumed: ReportStopped",
    ];

    /// <summary>The labels one event of the machine covers.</summary>
    public static IEnumerable<string> Labels(string name, StopByOthers.Phase before, StopByOthers.Phase after, IReadOnlyList<StopAction> actions)
    {
        if (before != after)
        {
            yield return $"phase {before}->{after}";
        }

        foreach (var kind in actions.Select(a => a.Kind).Distinct())
        {
            yield return $"{name}: {kind}";
        }
    }
}
