namespace ProcHex.Backends.Linux;

/// <summary>
/// A process is its pid and its start time (issue 17 item 3): /proc/PID/stat field 22, clock ticks after boot.
/// A pid is reused once its process is reaped; the start time of the newcomer differs (two processes that start in
/// the same tick with the same pid would need the pid space to wrap within 10 ms).
/// </summary>
internal static class ProcessIdentity
{
    private const int StartTimeField = 22;

    /// <summary>The start time of the process <paramref name="pid"/> names now, or null when there is none.</summary>
    public static ulong? StartTime(ILinuxKernel kernel, int pid) => kernel.StatField(pid, StartTimeField);

    /// <summary>
    /// True only when <paramref name="pid"/> names a process that started at another time than
    /// <paramref name="startTime"/>: gone is not replaced, and an unknown identity cannot be told apart.
    /// </summary>
    public static bool WasReplaced(ILinuxKernel kernel, int pid, ulong? startTime) =>
        startTime is { } known && StartTime(kernel, pid) is { } now && now != known;

    /// <summary>
    /// The pid the process has in its own pid namespace (the last field of NSpid in /proc/PID/status, issue 22 item 4),
    /// or null when that is <paramref name="pid"/> itself (our namespace) or unknown.
    /// </summary>
    public static int? NamespacePid(ILinuxKernel kernel, int pid)
    {
        var fields = kernel.StatusField(pid, "NSpid")?.Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries);
        return fields is { Length: > 1 } && int.TryParse(fields[^1], System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var inner) && inner != pid
            ? inner
            : null;
    }
}
