using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;

namespace ProcHex.Cli;

/// <summary>
/// What run and attach count: the SPECs, whether one the final image lacks fails the command (--strict), and how calls
/// are counted (--count-mode: in the victim where a site allows, or with traps everywhere).
/// </summary>
internal sealed record CountingOptions(IReadOnlyList<CountSpec> Specs, bool Strict, CountingMode Mode = CountingMode.InVictim)
{
    /// <summary>--by: what the summary's hits are broken down by, besides the SPECs.</summary>
    public Breakdown By { get; init; } = Breakdown.Spec;
}

/// <summary>The three commands, over the public API of ProcHex only.</summary>
internal static class Commands
{
    /// <summary>
    /// <c>prochex run</c>: create PROGRAM as <paramref name="options"/> say (stopped at their rendezvous, with their
    /// working directory, stdio files and ASLR), plant the counters, run it to its end and exit with its status
    /// (128+N for death by signal N).
    /// </summary>
    public static async Task<int> RunAsync(
        CliContext context,
        ProcHexSession session,
        CountingOptions counting,
        CreateOptions options,
        IReadOnlyList<string> command)
    {
        var stopAt = options.StopAt ?? Rendezvous.Create;
        var reporter = context.Reporter;
        var counter = new SpecCounter(session, reporter, counting.Specs, context.Show, counting.Mode, counting.By == Breakdown.Thread);
        session.LibraryListChanged = counter.OnLibraryListChanged;
        session.PendingBreakpointChanged = counter.OnPendingBreakpointChanged;
        session.MilestoneReached = milestone => ReportMilestone(reporter, milestone);
        var elapsed = Stopwatch.StartNew();

        ProcessHandle handle;
        try
        {
            handle = await session.CreateAsync(command[0], command, options, context.Termination.Token);
        }
        catch (CreateFailedException ex)
        {
            throw new CliFailure(CliFailure.Failed, ex.Message);
        }
        catch (OperationCanceledException) when (context.Termination.Requested)
        {
            return 128 + context.Termination.Signal;
        }

        var pid = handle.Pid;
        var released = false;
        try
        {
            reporter.Event(
                "created",
                new JsonObject { ["pid"] = pid, ["argv"] = new JsonArray([.. command.Select(a => (JsonNode)a)]) },
                $"pid {pid}: created {string.Join(' ', command)}");
            ReportRendezvous(reporter, pid, stopAt, handle.Rendezvous ?? stopAt);
            await counter.PlantAtRendezvousAsync(handle);
            session.Continue(handle);

            var outcome = await Counting.WaitAsync(context, session, [handle], counter, duration: null, elapsed);
            var victimAlive = outcome.End is not (CountingEnd.Exited or CountingEnd.Lost);
            await session.ReleaseAsync(handle);
            released = true;
            if (victimAlive)
            {
                reporter.Event("released", new JsonObject { ["pid"] = pid, ["how"] = "killed" }, $"pid {pid}: killed");
            }

            switch (outcome.End)
            {
                case CountingEnd.Lost:
                    Summarize(context, counter, null, elapsed, counting.By);
                    throw new CliFailure(CliFailure.Failed, $"lost control of pid {pid}: {outcome.Message}");
                case CountingEnd.Signal:
                    Summarize(context, counter, null, elapsed, counting.By);
                    return 128 + context.Termination.Signal;
                default:
                    Summarize(context, counter, outcome.Exit, elapsed, counting.By);
                    Strict(counting, counter);
                    return counter.UnmatchedPatterns.Any() ? CliFailure.Failed
                        : outcome.Exit is { } exit ? Counting.ExitCodeOf(exit) : 0;
            }
        }
        finally
        {
            if (!released)
            {
                // A failure (the victim died or could not be read): the created victim must not outlive us.
                await session.ReleaseAsync(handle);
                reporter.Event("released", new JsonObject { ["pid"] = pid, ["how"] = "killed" }, $"pid {pid}: killed");
            }
        }
    }

    /// <summary>
    /// <c>prochex attach</c>: grab each PID (issue 20 item 2: several count as one, their hits summed), count until the
    /// duration ends, a termination signal arrives or every one of them exits, then release those still running, their
    /// text clean. Each is grabbed, planted and let run before the next is grabbed, so none waits stopped for the
    /// others; a PID that cannot be grabbed ends the command before counting, and those grabbed already are released.
    /// </summary>
    public static async Task<int> AttachAsync(
        CliContext context,
        ProcHexSession session,
        IReadOnlyList<int> pids,
        CountingOptions counting,
        TimeSpan? duration)
    {
        var reporter = context.Reporter;
        var counter = new SpecCounter(session, reporter, counting.Specs, context.Show, counting.Mode, counting.By == Breakdown.Thread);
        session.LibraryListChanged = counter.OnLibraryListChanged;
        session.PendingBreakpointChanged = counter.OnPendingBreakpointChanged;
        session.MilestoneReached = milestone => ReportMilestone(reporter, milestone);
        var elapsed = Stopwatch.StartNew();
        var handles = new List<ProcessHandle>();
        var released = new HashSet<int>();
        try
        {
            foreach (var pid in pids)
            {
                ProcessHandle handle;
                try
                {
                    handle = await GrabIdentifiedAsync(session, pid, GrabMode.Control, context.Termination.Token);
                }
                catch (GrabFailedException ex)
                {
                    throw CliFailure.FromGrab(ex);
                }
                catch (OperationCanceledException) when (context.Termination.Requested)
                {
                    return 0;
                }

                handles.Add(handle);
                reporter.Event("grabbed", new JsonObject { ["pid"] = pid }, $"pid {pid}: grabbed");
                await counter.PlantAtRendezvousAsync(handle);
                session.Continue(handle);
            }

            var outcome = await Counting.WaitAsync(context, session, handles, counter, duration, elapsed);
            foreach (var handle in handles)
            {
                await session.ReleaseAsync(handle);
                released.Add(handle.Pid);
                if (!outcome.Ended.Contains(handle.Pid))
                {
                    reporter.Event("released", new JsonObject { ["pid"] = handle.Pid, ["how"] = "detached" }, $"pid {handle.Pid}: released, running");
                }
            }

            Summarize(context, counter, outcome.Exit, elapsed, counting.By);
            if (outcome.End == CountingEnd.Lost)
            {
                throw new CliFailure(CliFailure.Failed, handles.Count == 1 ? $"lost control of pid {handles[0].Pid}: {outcome.Message}" : $"lost control: {outcome.Message}");
            }

            Strict(counting, counter);
            return counter.UnmatchedPatterns.Any() ? CliFailure.Failed : 0;
        }
        finally
        {
            foreach (var handle in handles.Where(h => !released.Contains(h.Pid)))
            {
                await session.ReleaseAsync(handle);
                reporter.Event("released", new JsonObject { ["pid"] = handle.Pid, ["how"] = "detached" }, $"pid {handle.Pid}: released, running");
            }
        }
    }

    /// <summary><c>prochex inspect</c>: a read-only grab that never stops the process.</summary>
    public static async Task<int> InspectAsync(CliContext context, ProcHexSession session, int pid)
    {
        ProcessHandle handle;
        try
        {
            handle = await GrabIdentifiedAsync(session, pid, GrabMode.ReadOnly, context.Termination.Token);
        }
        catch (GrabFailedException ex)
        {
            throw CliFailure.FromGrab(ex);
        }

        try
        {
            var (threads, unavailable) = InspectThreads(handle, context.Show);
            context.Reporter.Inspect(new InspectReport(pid, handle.State.ToString(), handle.Objects, threads, unavailable));
            return 0;
        }
        finally
        {
            await session.ReleaseAsync(handle);
        }
    }

    /// <summary>
    /// Where the victim really stopped: <c>"at"</c> is the rendezvous reached; when it is not the one asked for,
    /// <c>"requested"</c> and <c>"reason"</c> say which was asked and why it could not be (no main found, no dynamic linker).
    /// </summary>
    private static void ReportRendezvous(Reporter reporter, int pid, Rendezvous asked, Rendezvous reached)
    {
        var json = new JsonObject { ["pid"] = pid, ["at"] = Name(reached) };
        if (reached == asked)
        {
            reporter.Event("rendezvous", json, $"pid {pid}: stopped at {Name(reached)}");
            return;
        }

        const string NoMain = "main could not be found (no main symbol, no __libc_start_main to read it from, entry code not recognised)";
        var reason = asked == Rendezvous.Main
            ? NoMain
            : $"a static executable has no {Name(asked)} (no dynamic linker){(reached == Rendezvous.Main ? "" : " and " + NoMain)}";
        json["requested"] = Name(asked);
        json["reason"] = reason;
        reporter.Event("rendezvous", json, $"pid {pid}: stopped at {Name(reached)}, not {Name(asked)}: {reason}");
    }

    /// <summary>
    /// Grabs the process PID names when the command starts, and only that one (issue 17 item 3): its start time is
    /// read first, so a pid recycled while the grab sets up is refused instead of latched onto. (The time between
    /// the user reading the pid and typing the command is beyond us: the pid carries no identity of its own.)
    /// </summary>
    private static Task<ProcessHandle> GrabIdentifiedAsync(ProcHexSession session, int pid, GrabMode mode, CancellationToken cancellationToken) =>
        session.StartTimeOf(pid) is { } startTime
            ? session.GrabAsync(pid, startTime, mode, cancellationToken)
            : session.GrabAsync(pid, mode, cancellationToken);

    public static string Name(Rendezvous rendezvous) => rendezvous switch
    {
        Rendezvous.Create => "create",
        Rendezvous.Preinit => "preinit",
        Rendezvous.Postinit => "postinit",
        _ => "main",
    };

    /// <summary>
    /// The last interval (with --interval), then the table or summary line, after a warning for each SPEC no image ever
    /// defined (the program's exit status still decides ours, unless --strict) and an error for each wildcard SPEC that
    /// matched nothing (exit 1 after the table). All from one reading of the counts.
    /// </summary>
    private static void Summarize(CliContext context, SpecCounter counter, ExitStatus? exit, Stopwatch elapsed, Breakdown by)
    {
        var reporter = context.Reporter;
        var counts = counter.Counts;
        context.Intervals?.Report(reporter, counts, elapsed.Elapsed);
        foreach (var missing in counts.Where(c => c.Status == SpecCount.NotFound))
        {
            var images = string.Join(", ", missing.Images);
            var imagesJson = new JsonArray([.. missing.Images.Select(i => (JsonNode)i)]);
            if (missing.PerFunction is not null)
            {
                var objects = counter.ObjectsSearched(missing, out var loaded);
                var objectName = CountSpec.TryParse(missing.Spec, out _)?.ObjectName;
                var where = loaded
                    ? $"objects searched: {(objects.Count == 0 ? "none" : string.Join(", ", objects))}"
                    : $"{objectName} was never loaded; objects loaded: {(objects.Count == 0 ? "none" : string.Join(", ", objects))}";
                var error = $"wildcard SPEC '{missing.Spec}' matched no function ({where}; images: {(images.Length == 0 ? "none" : images)})";
                reporter.Event(
                    "error",
                    new JsonObject
                    {
                        ["spec"] = missing.Spec,
                        ["message"] = error,
                        ["objects"] = new JsonArray([.. objects.Select(o => (JsonNode)o)]),
                        ["images"] = imagesJson,
                    },
                    "error: " + error);
                continue;
            }

            var message = $"SPEC '{missing.Spec}' was not found in any image (searched: {(images.Length == 0 ? "none" : images)})";
            reporter.Event(
                "warning",
                new JsonObject
                {
                    ["spec"] = missing.Spec,
                    ["message"] = message,
                    ["images"] = imagesJson,
                },
                "warning: " + message);
        }

        reporter.Summary(counts, exit, elapsed.Elapsed, counter.Rows(by));
    }

    /// <summary>--strict: a SPEC the final image does not define fails the command (exit 1), after the table.</summary>
    private static void Strict(CountingOptions counting, SpecCounter counter)
    {
        if (!counting.Strict)
        {
            return;
        }

        var missing = counter.MissingInFinalImage.ToList();
        if (missing.Count > 0)
        {
            var final = missing[0].Images.Count > 0 ? missing[0].Images[^1] : "the final image";
            throw new CliFailure(
                CliFailure.Failed,
                $"--strict: {string.Join(", ", missing.Select(m => $"'{m.Spec}'"))} not defined in the final image ({final})");
        }
    }

    /// <summary>Fork, vfork and exec get a lifecycle line of their own (rendezvous lines come from the commands).</summary>
    private static void ReportMilestone(Reporter reporter, Milestone milestone)
    {
        var pid = milestone.Handle.Pid;
        if (milestone.Kind == MilestoneKind.ExecDone)
        {
            var path = ExecutablePath(milestone.Handle);
            reporter.Event("exec", new JsonObject { ["pid"] = pid, ["path"] = path }, $"pid {pid}: exec'd {path}");
            return;
        }

        var text = milestone.Kind switch
        {
            MilestoneKind.ForkFollowed => "forked; the child runs on untraced, without our breakpoints",
            MilestoneKind.VforkDone => "vfork child let go of the shared memory; breakpoints back in",
            _ => null,
        };
        if (text is not null)
        {
            var name = milestone.Kind == MilestoneKind.ForkFollowed ? "fork" : "vfork_done";
            reporter.Event(name, new JsonObject { ["pid"] = pid, ["tid"] = milestone.ThreadId }, $"pid {pid}: {text}");
        }
    }

    /// <summary>The executable of the victim's current image (the first object), or "?" when its objects cannot be read.</summary>
    private static string ExecutablePath(ProcessHandle handle)
    {
        try
        {
            return handle.Objects is [var first, ..] ? first.Path : "?";
        }
        catch (ProcHexException)
        {
            return "?";
        }
    }

    /// <summary>Each thread with its PC symbolized; an OS that cannot list them says why instead of failing inspect.</summary>
    private static (IReadOnlyList<InspectedThread> Threads, string? Unavailable) InspectThreads(ProcessHandle handle, Func<string, string> show)
    {
        IReadOnlyList<ThreadSnapshot> snapshots;
        try
        {
            snapshots = handle.Threads;
        }
        catch (ProcHexException ex)
        {
            return ([], ex.Message);
        }

        return ([.. snapshots.Select(t => new InspectedThread(t.ThreadId, t.ProgramCounter, t.ProgramCounter is { } pc ? Where(handle, pc, show) : null))], null);
    }

    private static string? Where(ProcessHandle handle, ulong pc, Func<string, string> show) => handle.ResolveAddress(pc) is not { } at
        ? null
        : at.Symbol is null
            ? string.Create(CultureInfo.InvariantCulture, $"{at.ObjectName}+0x{at.Offset:x}")
            : string.Create(CultureInfo.InvariantCulture, $"{at.ObjectName}`{show(at.Symbol)}+0x{at.Offset:x}");
}
