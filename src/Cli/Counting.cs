using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;

namespace ProcHex.Cli;

/// <summary>Why counting ended.</summary>
internal enum CountingEnd
{
    Exited,
    Lost,
    Duration,
    Signal,
}

/// <summary>
/// The end of counting: why, the victim's exit status (when one victim was counted) or a message, and the processes
/// that ended (exited or lost) while counting: those need no release.
/// </summary>
internal sealed record CountingOutcome(CountingEnd End, ExitStatus? Exit, string? Message)
{
    public IReadOnlySet<int> Ended { get; init; } = new HashSet<int>();
}

/// <summary>
/// The part run and attach share: with breakpoints planted and the victims continued, wait for the end of every
/// one of them (exit or loss of control), the duration or a termination signal, showing the live line meanwhile.
/// </summary>
internal static class Counting
{
    public static async Task<CountingOutcome> WaitAsync(
        CliContext context,
        ProcHexSession session,
        IReadOnlyList<ProcessHandle> handles,
        SpecCounter counter,
        TimeSpan? duration,
        Stopwatch elapsed)
    {
        var counting = handles.ToDictionary(h => h.Pid);
        var ended = new HashSet<int>();
        var lost = new List<string>();
        ExitStatus? lastExit = null;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(context.Termination.Token);
        if (duration is { } limit && context.RealTime)
        {
            stop.CancelAfter(limit);
        }

        var live = context.Reporter.WantsLiveLine && context.RealTime
            ? ShowLiveAsync(context.Reporter, counter, elapsed, stop.Token)
            : Task.CompletedTask;
        var intervals = context.Intervals is { } every && context.RealTime
            ? ShowIntervalsAsync(context.Reporter, counter, every, elapsed, stop.Token)
            : Task.CompletedTask;
        try
        {
            while (true)
            {
                var notification = await session.WaitForNotificationAsync(Timeout.InfiniteTimeSpan, stop.Token);
                if (notification is null || !counting.TryGetValue(notification.Pid, out var handle) || ended.Contains(handle.Pid))
                {
                    continue;
                }

                switch (notification.Kind)
                {
                    case NotificationKind.Exited:
                        lastExit = notification.Exit ?? handle.Exit;
                        ReportExit(context.Reporter, handle.Pid, lastExit);
                        ended.Add(handle.Pid);
                        break;
                    case NotificationKind.Lost:
                        context.Reporter.Event(
                            "lost",
                            new JsonObject { ["pid"] = handle.Pid, ["message"] = notification.Message },
                            $"pid {handle.Pid}: control lost: {notification.Message}");
                        lost.Add(handles.Count == 1 ? notification.Message ?? "" : $"pid {handle.Pid}: {notification.Message}");
                        ended.Add(handle.Pid);
                        break;
                    default:
                        context.Reporter.Event(
                            "error",
                            new JsonObject { ["pid"] = handle.Pid, ["message"] = notification.Message },
                            $"pid {handle.Pid}: {notification.Message}");
                        break;
                }

                if (ended.Count == counting.Count)
                {
                    return lost.Count > 0
                        ? new CountingOutcome(CountingEnd.Lost, null, string.Join("; ", lost)) { Ended = ended }
                        : new CountingOutcome(CountingEnd.Exited, handles.Count == 1 ? lastExit : null, null) { Ended = ended };
                }
            }
        }
        catch (OperationCanceledException)
        {
            return new CountingOutcome(context.Termination.Requested ? CountingEnd.Signal : CountingEnd.Duration, null, null) { Ended = ended };
        }
        finally
        {
            await stop.CancelAsync();
            await live;
            await intervals;
        }
    }

    public static void ReportExit(Reporter reporter, int pid, ExitStatus? exit)
    {
        var fields = new JsonObject { ["pid"] = pid };
        foreach (var (key, value) in Reporter.ExitFields(exit).ToList())
        {
            fields[key] = value?.DeepClone();
        }

        reporter.Event(
            exit is { Signaled: true } ? "killed" : "exited",
            fields,
            exit is { } e ? $"pid {pid}: {e}" : $"pid {pid}: exited");
    }

    /// <summary>The shell's convention: the status, or 128+N for death by signal N.</summary>
    public static int ExitCodeOf(ExitStatus exit) => exit.Signaled ? 128 + exit.Signal : exit.Code;

    /// <summary>--interval: every period, the hits since the last one (the rest comes with the summary).</summary>
    private static async Task ShowIntervalsAsync(Reporter reporter, SpecCounter counter, IntervalCounts intervals, Stopwatch elapsed, CancellationToken token)
    {
        using var timer = new PeriodicTimer(intervals.Period);
        try
        {
            while (await timer.WaitForNextTickAsync(token))
            {
                intervals.Report(reporter, counter.Counts, elapsed.Elapsed);
            }
        }
        catch (OperationCanceledException)
        {
            // Counting is over.
        }
    }

    private static async Task ShowLiveAsync(Reporter reporter, SpecCounter counter, Stopwatch elapsed, CancellationToken token)
    {
        try
        {
            while (!token.IsCancellationRequested)
            {
                reporter.Live(string.Create(
                    CultureInfo.InvariantCulture,
                    $"[{elapsed.Elapsed.TotalSeconds,7:0.0}s] {counter.TotalHits} hits  {counter.LiveText}"));
                await Task.Delay(TimeSpan.FromMilliseconds(200), token);
            }
        }
        catch (OperationCanceledException)
        {
            // Counting is over.
        }
    }
}

/// <summary>
/// <c>--interval SECONDS</c> (issue 20 item 4): the hits since the last interval, keyed as the summary's counts; the
/// last interval ends where the summary is taken, so the intervals add up to the summary exactly.
/// </summary>
internal sealed class IntervalCounts(TimeSpan period)
{
    private readonly Lock _gate = new();
    private Dictionary<string, long> _last = new(StringComparer.Ordinal);

    public TimeSpan Period { get; } = period;

    public void Report(Reporter reporter, IReadOnlyList<SpecCount> counts, TimeSpan t)
    {
        var now = SpecCounter.Flat(counts);
        var since = new Dictionary<string, long>(StringComparer.Ordinal);
        lock (_gate)
        {
            foreach (var (key, hits) in now)
            {
                var delta = hits - _last.GetValueOrDefault(key);
                if (delta != 0)
                {
                    since[key] = delta;
                }
            }

            _last = now;
        }

        reporter.Interval(Math.Round(t.TotalSeconds, 3), since);
    }
}
