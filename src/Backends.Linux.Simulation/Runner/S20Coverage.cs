namespace ProcHex.Backends.Linux.Simulation.Runner;

/// <summary>
/// The transitions of <see cref="StopByOthers"/> a run can cover: every phase change the machine makes, and every
/// kind of action each of its events can ask for (read off its code). A seed records the ones it hit.
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
        "AwaitResume: ReportResumed",
        "CoreResumed: Park",
        "CoreResumed: ReportStopped",
        "ThreadGone: ReportResumed",
        "ThreadGone: ReportStopped",
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
