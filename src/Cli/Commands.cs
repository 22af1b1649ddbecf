using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;

namespace ProcHex.Cli;

/// <summary>The three commands, over the public API of ProcHex only.</summary>
internal static class Commands
{
    /// <summary>
    /// <c>prochex run</c>: create PROGRAM stopped at <paramref name="stopAt"/>, plant the counters, run it to its
    /// end and exit with its status (128+N for death by signal N).
    /// </summary>
    public static async Task<int> RunAsync(
        CliContext context,
        ProcHexSession session,
        IReadOnlyList<CountSpec> specs,
        Rendezvous stopAt,
        IReadOnlyList<string> command)
    {
        var reporter = context.Reporter;
        var counter = new SpecCounter(session, reporter, specs);
        session.LibraryListChanged = counter.OnLibraryListChanged;
        session.MilestoneReached = milestone => ReportMilestone(reporter, milestone);
        var elapsed = Stopwatch.StartNew();

        ProcessHandle handle;
        try
        {
            handle = await session.CreateAsync(command[0], command, new CreateOptions { StopAt = stopAt }, context.Termination.Token);
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
            reporter.Event(
                "rendezvous",
                new JsonObject { ["pid"] = pid, ["at"] = Name(stopAt) },
                $"pid {pid}: stopped at {Name(stopAt)}");
            counter.PlantAtRendezvous(handle, initialLibrariesLoaded: stopAt != Rendezvous.Create);
            session.Continue(handle);

            var outcome = await Counting.WaitAsync(context, session, handle, counter, duration: null, elapsed);
            var victimAlive = outcome.End is not (CountingEnd.Exited or CountingEnd.Lost);
            await session.ReleaseAsync(handle);
            released = true;
            if (victimAlive)
            {
                reporter.Event("released", new JsonObject { ["pid"] = pid, ["how"] = "killed" }, $"pid {pid}: killed");
            }

            switch (outcome.End)
            {
                case CountingEnd.UnknownSpec:
                    throw new CliFailure(CliFailure.Failed, outcome.Message!);
                case CountingEnd.Lost:
                    reporter.Summary(counter.Counts, null, elapsed.Elapsed);
                    throw new CliFailure(CliFailure.Failed, $"lost control of pid {pid}: {outcome.Message}");
                case CountingEnd.Signal:
                    reporter.Summary(counter.Counts, null, elapsed.Elapsed);
                    return 128 + context.Termination.Signal;
                default:
                    reporter.Summary(counter.Counts, outcome.Exit, elapsed.Elapsed);
                    return outcome.Exit is { } exit ? Counting.ExitCodeOf(exit) : 0;
            }
        }
        finally
        {
            if (!released)
            {
                // An unknown SPEC at the rendezvous or a failure: the created victim must not outlive us.
                await session.ReleaseAsync(handle);
                reporter.Event("released", new JsonObject { ["pid"] = pid, ["how"] = "killed" }, $"pid {pid}: killed");
            }
        }
    }

    /// <summary>
    /// <c>prochex attach</c>: grab PID, count until the duration ends, a termination signal arrives or it exits,
    /// then release it running, its text clean.
    /// </summary>
    public static async Task<int> AttachAsync(
        CliContext context,
        ProcHexSession session,
        int pid,
        IReadOnlyList<CountSpec> specs,
        TimeSpan? duration)
    {
        var reporter = context.Reporter;
        var counter = new SpecCounter(session, reporter, specs);
        session.LibraryListChanged = counter.OnLibraryListChanged;
        session.MilestoneReached = milestone => ReportMilestone(reporter, milestone);
        var elapsed = Stopwatch.StartNew();

        ProcessHandle handle;
        try
        {
            handle = await session.GrabAsync(pid, GrabMode.Control, context.Termination.Token);
        }
        catch (GrabFailedException ex)
        {
            throw CliFailure.FromGrab(ex);
        }
        catch (OperationCanceledException) when (context.Termination.Requested)
        {
            return 0;
        }

        var released = false;
        try
        {
            reporter.Event("grabbed", new JsonObject { ["pid"] = pid }, $"pid {pid}: grabbed");
            counter.PlantAtRendezvous(handle, initialLibrariesLoaded: true);
            session.Continue(handle);

            var outcome = await Counting.WaitAsync(context, session, handle, counter, duration, elapsed);
            var alive = outcome.End is not (CountingEnd.Exited or CountingEnd.Lost);
            await session.ReleaseAsync(handle);
            released = true;
            if (alive)
            {
                reporter.Event("released", new JsonObject { ["pid"] = pid, ["how"] = "detached" }, $"pid {pid}: released, running");
            }

            if (outcome.End == CountingEnd.UnknownSpec)
            {
                throw new CliFailure(CliFailure.Failed, outcome.Message!);
            }

            reporter.Summary(counter.Counts, outcome.Exit, elapsed.Elapsed);
            return outcome.End == CountingEnd.Lost
                ? throw new CliFailure(CliFailure.Failed, $"lost control of pid {pid}: {outcome.Message}")
                : 0;
        }
        finally
        {
            if (!released)
            {
                await session.ReleaseAsync(handle);
                reporter.Event("released", new JsonObject { ["pid"] = pid, ["how"] = "detached" }, $"pid {pid}: released, running");
            }
        }
    }

    /// <summary><c>prochex inspect</c>: a read-only grab that never stops the process.</summary>
    public static async Task<int> InspectAsync(CliContext context, ProcHexSession session, int pid)
    {
        ProcessHandle handle;
        try
        {
            handle = await session.GrabAsync(pid, GrabMode.ReadOnly, context.Termination.Token);
        }
        catch (GrabFailedException ex)
        {
            throw CliFailure.FromGrab(ex);
        }

        try
        {
            var (threads, unavailable) = InspectThreads(handle);
            context.Reporter.Inspect(new InspectReport(pid, handle.State.ToString(), handle.Objects, threads, unavailable));
            return 0;
        }
        finally
        {
            await session.ReleaseAsync(handle);
        }
    }

    public static string Name(Rendezvous rendezvous) => rendezvous switch
    {
        Rendezvous.Create => "create",
        Rendezvous.Preinit => "preinit",
        Rendezvous.Postinit => "postinit",
        _ => "main",
    };

    /// <summary>Fork and vfork get a lifecycle line of their own (exec and rendezvous lines come from the SPEC counter).</summary>
    private static void ReportMilestone(Reporter reporter, Milestone milestone)
    {
        var pid = milestone.Handle.Pid;
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

    /// <summary>Each thread with its PC symbolized; an OS that cannot list them says why instead of failing inspect.</summary>
    private static (IReadOnlyList<InspectedThread> Threads, string? Unavailable) InspectThreads(ProcessHandle handle)
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

        return ([.. snapshots.Select(t => new InspectedThread(t.ThreadId, t.ProgramCounter, t.ProgramCounter is { } pc ? Where(handle, pc) : null))], null);
    }

    private static string? Where(ProcessHandle handle, ulong pc) => handle.ResolveAddress(pc) is not { } at
        ? null
        : at.Symbol is null
            ? string.Create(CultureInfo.InvariantCulture, $"{at.ObjectName}+0x{at.Offset:x}")
            : string.Create(CultureInfo.InvariantCulture, $"{at.ObjectName}`{at.Symbol}+0x{at.Offset:x}");
}
