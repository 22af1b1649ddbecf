using ProcHex.Ports;
using Snapshooter;
using Snapshooter.Xunit;

namespace ProcHex.Scenarios;

/// <summary>
/// The behaviours S1–S23 that have an OS side, written once against <see cref="IScenarioBackend"/>. Each backend's
/// test project derives a sealed class from it (tagged with its Backend trait), so the fake, Linux and FreeBSD
/// run the same scenarios. The canonical scenarios snapshot their trace; the snapshot is shared by every backend,
/// because the core must behave the same whatever kernel is underneath.
/// </summary>
public abstract class ScenarioSuite(IScenarioBackend backend) : IAsyncLifetime
{
    private static readonly TimeSpan Forever = Timeout.InfiniteTimeSpan;

    protected IScenarioBackend Backend { get; } = backend;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await Backend.DisposeAsync();

    private ProcHexSession NewSession(int lruLimit = 8) => new(Backend.Tracer, new ProcHexOptions { LruLimit = lruLimit });

    private Task<ProcessHandle> CreateAsync(ProcHexSession session, ProgramKind kind, Rendezvous stopAt, params string[] arguments)
    {
        var program = Backend.Program(kind);
        return session.CreateAsync(program.File, program.WithArguments(arguments), new CreateOptions { StopAt = stopAt });
    }

    private static long ReadCalls(ProcessHandle handle)
    {
        Span<byte> counter = stackalloc byte[8];
        Assert.Equal(8, handle.ReadMemory(handle.LookupSymbol("a.out`calls"), counter));
        return BitConverter.ToInt64(counter);
    }

    [Fact]
    [Trait("Spec", "S1")]
    [Trait("Spec", "S11")]
    [Trait("Spec", "S14")]
    [Trait("Spec", "S18")]
    [Trait("Spec", "S19")]
    public Task Create_stops_at_main_counts_every_hit_and_reports_the_exit() => Backend.RunAsync(async () =>
    {
        var trace = new ScenarioTrace();
        // Named now, while the test method is still on the stack: a real backend resumes the body elsewhere.
        var snapshot = Snapshot.FullName();
        await using var session = NewSession();
        var handle = await CreateAsync(session, ProgramKind.Loop, Rendezvous.Main, "5", "3");
        trace.Handle("created at main", handle);
        trace.Add($"calls before continue: {ReadCalls(handle)}");
        Assert.Equal(handle.Pid, session.TargetPid);

        var hits = 0;
        await session.SetBreakpointAsync(handle, "a.out`work", _ => hits++);
        session.Continue(handle);
        trace.Notification(await session.WaitForNotificationAsync(Forever));
        trace.Add($"hits of work: {hits}");
        trace.Handle("after exit", handle);
        await session.ReleaseAsync(handle);

        Snapshot.Match(trace.Lines, snapshot);
    });

    [Theory]
    [InlineData(Rendezvous.Create)]
    [InlineData(Rendezvous.Preinit)]
    [InlineData(Rendezvous.Postinit)]
    [InlineData(Rendezvous.Main)]
    [Trait("Spec", "S1")]
    [Trait("Spec", "S10")]
    [Trait("Spec", "S12")]
    [Trait("Spec", "S17")]
    public Task Create_parks_idle_at_the_chosen_rendezvous_with_no_breakpoint_in_the_text(Rendezvous stopAt) => Backend.RunAsync(async () =>
    {
        await using var session = NewSession();
        var handle = await CreateAsync(session, ProgramKind.Loop, stopAt, "2");

        Assert.Equal(VictimState.Idle, handle.State);
        Assert.True(Backend.TextIsOriginal(handle.Pid), "an idle victim's text holds a breakpoint (S10)");
        var thread = Assert.Single(handle.Threads);
        Assert.NotNull(handle.ResolveAddress(thread.ProgramCounter!.Value));
        Assert.Equal(0, stopAt == Rendezvous.Create ? 0 : ReadCalls(handle));
        var observed = Backend.Observe(handle.Pid);
        Assert.True(observed is { Stopped: true, Traced: true }, $"parked victim seen as {observed}");

        session.Continue(handle);
        var note = await session.WaitForNotificationAsync(Forever);
        Assert.Equal((NotificationKind.Exited, 0), (note!.Kind, note.Exit!.Value.Code));
    });

    [Fact]
    [Trait("Spec", "S2")]
    public Task Create_of_a_missing_file_says_failed_to_execute_and_registers_nothing() => Backend.RunAsync(async () =>
    {
        await using var session = NewSession();
        var missing = Backend.Program(ProgramKind.Loop).File + "-missing";

        var error = await Assert.ThrowsAsync<CreateFailedException>(() => session.CreateAsync(missing, [missing]));

        Assert.StartsWith($"failed to execute {missing}: ", error.Message, StringComparison.Ordinal);
        Assert.Empty(session.Handles);
    });

    [Fact]
    [Trait("Spec", "S1")]
    [Trait("Issue", "22")]
    public Task Item1_create_options_reach_the_program_and_its_piped_stdout_is_read_through_the_handle() => Backend.RunAsync(async () =>
    {
        await using var session = NewSession();
        var program = Backend.Program(ProgramKind.Stdio);
        var options = new CreateOptions
        {
            StopAt = Rendezvous.Main,
            WorkingDirectory = "/",
            Argv0 = "renamed",
            StandardInput = StdioTarget.Null,
            StandardOutput = StdioTarget.Pipe,
        };
        if (!Backend.SupportsCreateOptions)
        {
            var refused = await Assert.ThrowsAsync<CreateFailedException>(() => session.CreateAsync(program.File, program.WithArguments("print"), options));
            Assert.Equal(TracerErrorKind.Unsupported, refused.Kind);
            Assert.Empty(session.Handles);
            return;
        }

        var handle = await session.CreateAsync(program.File, program.WithArguments("print"), options);
        Assert.Null(handle.StandardInput);
        Assert.Null(handle.StandardError);
        var stdout = handle.StandardOutput!;
        session.Continue(handle);
        var note = await session.WaitForNotificationAsync(Forever);
        Assert.Equal((NotificationKind.Exited, 0), (note!.Kind, note.Exit!.Value.Code));

        // Read once the victim is gone: its end is closed, so the read ends at end of file on every backend.
        Assert.Equal("argv0=renamed cwd=/\n", await new StreamReader(stdout).ReadToEndAsync());
        await session.ReleaseAsync(handle);
        Assert.False(stdout.CanRead);
    });

    [Fact]
    [Trait("Spec", "S3")]
    [Trait("Spec", "S9")]
    [Trait("Spec", "S16")]
    public Task Grab_counts_hits_and_release_leaves_the_victim_running_untraced_with_its_text_restored() => Backend.RunAsync(async () =>
    {
        var trace = new ScenarioTrace();
        // Named now, while the test method is still on the stack: a real backend resumes the body elsewhere.
        var snapshot = Snapshot.FullName();
        var pid = Backend.Spawn(ProgramKind.Sleeper);
        await using var session = NewSession();
        var handle = await session.GrabAsync(pid);
        trace.Handle("grabbed", handle);
        var parked = Backend.Observe(pid);
        trace.Add($"seen from outside: stopped={parked.Stopped} traced={parked.Traced}");

        var threeHits = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await session.SetBreakpointAsync(handle, "a.out`work", hit =>
        {
            if (hit.HitCount == 3)
            {
                threeHits.TrySetResult();
            }
        });
        session.Continue(handle);
        await threeHits.Task;
        trace.Add($"three hits of work");
        await session.ReleaseAsync(handle);
        trace.Handle("released", handle);

        var after = await Backend.WaitUntilAsync(pid, o => !o.Traced && !o.Stopped);
        trace.Add($"seen from outside: exists={after.Exists} stopped={after.Stopped} traced={after.Traced}");
        trace.Add($"text original: {Backend.TextIsOriginal(pid)}");
        Snapshot.Match(trace.Lines, snapshot);
    });

    [Fact]
    [Trait("Spec", "S3")]
    public Task Grab_of_a_pid_that_does_not_exist_fails_clearly() => Backend.RunAsync(async () =>
    {
        await using var session = NewSession();
        var pid = Backend.Spawn(ProgramKind.Sleeper);
        Backend.SendSignal(pid, ExternalSignal.Kill);
        await Backend.WaitUntilAsync(pid, o => !o.Exists);

        var error = await Assert.ThrowsAsync<GrabFailedException>(() => session.GrabAsync(pid));

        Assert.StartsWith($"failed to grab pid {pid}: ", error.Message, StringComparison.Ordinal);
        Assert.Empty(session.Handles);
    });

    [Fact]
    [Trait("Spec", "S4")]
    public Task Read_only_grab_neither_stops_nor_traces_and_serves_symbols_and_memory() => Backend.RunAsync(async () =>
    {
        var pid = Backend.Spawn(ProgramKind.Sleeper);
        await using var session = NewSession();
        await Backend.WaitUntilAsync(pid, o => o.Exists);

        var handle = await session.GrabAsync(pid, GrabMode.ReadOnly);

        Assert.True(handle.IsReadOnly);
        Assert.Equal(new ProcessObservation(true, false, false, false), Backend.Observe(pid));
        Assert.Contains(handle.Objects, o => o.Name == Path.GetFileName(Backend.Program(ProgramKind.Sleeper).File));
        Assert.True(ReadCalls(handle) >= 0);
        var work = handle.LookupSymbol("a.out`work");
        Assert.Equal("work", handle.ResolveAddress(work)?.Symbol);
        await session.ReleaseAsync(handle);
    });

    [Fact]
    [Trait("Spec", "S5")]
    [Trait("Spec", "S7")]
    [Trait("Spec", "S8")]
    public Task Read_only_handles_are_shared_cached_and_evicted_least_recently_used_first() => Backend.RunAsync(async () =>
    {
        var trace = new ScenarioTrace();
        // Named now, while the test method is still on the stack: a real backend resumes the body elsewhere.
        var snapshot = Snapshot.FullName();
        var first = Backend.Spawn(ProgramKind.Sleeper);
        var second = Backend.Spawn(ProgramKind.Sleeper);
        await using var session = NewSession(lruLimit: 1);

        var a = await session.GrabAsync(first, GrabMode.ReadOnly);
        var again = await session.GrabAsync(first, GrabMode.ReadOnly);
        trace.Add($"second grab of {trace.Name(first)} is the same handle: {ReferenceEquals(a, again)}");
        await session.ReleaseAsync(again);
        await session.ReleaseAsync(a);
        trace.Add($"released {trace.Name(first)}; cached: {string.Join(",", session.Handles.Select(h => trace.Name(h.Pid)))}");

        var b = await session.GrabAsync(second, GrabMode.ReadOnly);
        await session.ReleaseAsync(b);
        trace.Add($"released {trace.Name(second)}; cached: {string.Join(",", session.Handles.Select(h => trace.Name(h.Pid)))}");
        trace.Handle("evicted", a);
        Snapshot.Match(trace.Lines, snapshot);
    });

    [Fact]
    [Trait("Spec", "S6")]
    public Task A_cached_read_only_handle_asked_for_control_is_replaced_by_a_controlling_one() => Backend.RunAsync(async () =>
    {
        var trace = new ScenarioTrace();
        // Named now, while the test method is still on the stack: a real backend resumes the body elsewhere.
        var snapshot = Snapshot.FullName();
        var pid = Backend.Spawn(ProgramKind.Sleeper);
        await using var session = NewSession();
        var readOnly = await session.GrabAsync(pid, GrabMode.ReadOnly);

        var control = await session.GrabAsync(pid);
        trace.Add($"same handle: {ReferenceEquals(readOnly, control)}; read-only: {control.IsReadOnly}");
        trace.Handle("controlling", control);
        await session.ReleaseAsync(readOnly);
        await session.ReleaseAsync(control);
        var after = await Backend.WaitUntilAsync(pid, o => !o.Traced && !o.Stopped);
        trace.Add($"after release: exists={after.Exists} traced={after.Traced}");
        Snapshot.Match(trace.Lines, snapshot);
    });

    [Fact]
    [Trait("Spec", "S13")]
    public Task Exec_forgets_breakpoints_without_touching_the_new_text_and_the_new_image_runs_to_exit() => Backend.RunAsync(async () =>
    {
        var trace = new ScenarioTrace();
        // Named now, while the test method is still on the stack: a real backend resumes the body elsewhere.
        var snapshot = Snapshot.FullName();
        await using var session = NewSession();
        var milestones = RecordMilestones(session);
        var handle = await CreateAsync(session, ProgramKind.Exec, Rendezvous.Main, "4");
        var hits = 0;
        await session.SetBreakpointAsync(handle, "a.out`work", _ => hits++);
        session.Continue(handle);

        trace.Notification(await session.WaitForNotificationAsync(Forever));
        trace.Add($"hits of work (before the exec only): {hits}");
        trace.Add($"milestones: {string.Join(", ", milestones)}");
        Snapshot.Match(trace.Lines, snapshot);
    });

    [Theory]
    [InlineData(ProgramKind.Fork)]
    [InlineData(ProgramKind.Vfork)]
    [Trait("Spec", "S13")]
    public Task A_child_never_inherits_breakpoints_and_the_parent_keeps_them(ProgramKind kind) => Backend.RunAsync(async () =>
    {
        var trace = new ScenarioTrace();
        // Named now, while the test method is still on the stack: a real backend resumes the body elsewhere.
        var snapshot = Snapshot.FullName(SnapshotNameExtension.Create(kind));
        await using var session = NewSession();
        var milestones = RecordMilestones(session);
        var handle = await CreateAsync(session, kind, Rendezvous.Main, "3");
        var hits = 0;
        await session.SetBreakpointAsync(handle, "a.out`work", _ => hits++);
        session.Continue(handle);

        trace.Notification(await session.WaitForNotificationAsync(Forever));
        trace.Add($"hits of work in the parent: {hits}");
        trace.Add($"milestones: {string.Join(", ", milestones)}");
        Snapshot.Match(trace.Lines, snapshot);
    });

    [Fact]
    [Trait("Spec", "S14")]
    public Task Hits_from_several_threads_are_each_counted_once() => Backend.RunAsync(async () =>
    {
        await using var session = NewSession();
        var handle = await CreateAsync(session, ProgramKind.Threads, Rendezvous.Main, "400");
        var hits = 0;
        await session.SetBreakpointAsync(handle, "a.out`work", _ => Interlocked.Increment(ref hits));
        session.Continue(handle);

        var note = await session.WaitForNotificationAsync(Forever);

        Assert.Equal((NotificationKind.Exited, 0), (note!.Kind, note.Exit!.Value.Code));
        Assert.Equal(400, hits);
    });

    [Fact]
    [Trait("Spec", "S17")]
    public Task A_library_loaded_by_dlopen_is_announced_probed_and_its_unload_reported() => Backend.RunAsync(async () =>
    {
        var trace = new ScenarioTrace();
        // Named now, while the test method is still on the stack: a real backend resumes the body elsewhere.
        var snapshot = Snapshot.FullName();
        await using var session = NewSession();
        var hits = 0;
        var planting = new List<Task>();
        session.LibraryListChanged = change =>
        {
            foreach (var added in change.Added.Where(o => TryLookup(change.Handle, $"{o.Name}`libwork")))
            {
                trace.Add($"{change.Event}: library with libwork added");
                planting.Add(session.SetBreakpointAsync(change.Handle, $"{added.Name}`libwork", _ => hits++));
            }

            if (change.Removed.Count > 0 && change.Event == RtldEventKind.DlActivity)
            {
                trace.Add($"{change.Event}: {change.Removed.Count} removed");
            }
        };
        var handle = await CreateAsync(session, ProgramKind.Dlopen, Rendezvous.Main, "6");
        session.Continue(handle);

        trace.Notification(await session.WaitForNotificationAsync(Forever));
        await Task.WhenAll(planting);
        trace.Add($"hits of libwork: {hits}");
        Snapshot.Match(trace.Lines, snapshot);
    });

    [Fact]
    [Trait("Spec", "S20")]
    [Trait("Spec", "S19")]
    public Task A_victim_stopped_by_someone_else_waits_for_them_then_runs_to_exit() => Backend.RunAsync(async () =>
    {
        var trace = new ScenarioTrace();
        // Named now, while the test method is still on the stack: a real backend resumes the body elsewhere.
        var snapshot = Snapshot.FullName();
        await using var session = NewSession();
        var handle = await CreateAsync(session, ProgramKind.SelfStop, Rendezvous.Main);
        session.Continue(handle);

        await Backend.WaitUntilAsync(handle.Pid, o => o.Stopped && handle.State == VictimState.HeldByOthers);
        trace.Handle("stopped itself", handle);
        trace.Add($"calls while held: {ReadCalls(handle)}");
        Backend.SendSignal(handle.Pid, ExternalSignal.Continue);

        trace.Notification(await session.WaitForNotificationAsync(Forever));
        Snapshot.Match(trace.Lines, snapshot);
    });

    [Fact]
    [Trait("Spec", "S20")]
    [Trait("Spec", "S9")]
    public Task A_grabbed_victim_stopped_by_someone_else_is_released_still_stopped() => Backend.RunAsync(async () =>
    {
        var pid = Backend.Spawn(ProgramKind.Sleeper);
        await using var session = NewSession();
        var handle = await session.GrabAsync(pid);
        session.Continue(handle);
        await Backend.WaitUntilAsync(pid, _ => handle.State == VictimState.Running);
        Backend.SendSignal(pid, ExternalSignal.Stop);
        await Backend.WaitUntilAsync(pid, _ => handle.State == VictimState.HeldByOthers);

        await session.ReleaseAsync(handle);

        var after = await Backend.WaitUntilAsync(pid, o => !o.Traced);
        Assert.True(after is { Exists: true, Stopped: true }, $"released victim seen as {after}");
        Assert.True(Backend.TextIsOriginal(pid));
    });

    [Fact]
    [Trait("Spec", "S19")]
    public Task A_crash_is_notified_once_with_its_signal() => Backend.RunAsync(async () =>
    {
        var trace = new ScenarioTrace();
        // Named now, while the test method is still on the stack: a real backend resumes the body elsewhere.
        var snapshot = Snapshot.FullName();
        await using var session = NewSession();
        var handle = await CreateAsync(session, ProgramKind.Crash, Rendezvous.Main);
        session.Continue(handle);

        trace.Notification(await session.WaitForNotificationAsync(Forever));
        trace.Handle("after the crash", handle);
        trace.Add($"pending notifications: {session.PendingNotifications}");
        Snapshot.Match(trace.Lines, snapshot);
    });

    [Theory]
    [InlineData("idle")]
    [InlineData("running")]
    [InlineData("held by others")]
    [Trait("Spec", "S19")]
    [Trait("Spec", "S9")]
    public Task A_victim_killed_from_outside_is_notified_once_whatever_it_was_doing(string when) => Backend.RunAsync(async () =>
    {
        var trace = new ScenarioTrace();
        // Named now, while the test method is still on the stack: a real backend resumes the body elsewhere.
        var snapshot = Snapshot.FullName(SnapshotNameExtension.Create(when.Replace(' ', '-')));
        await using var session = NewSession();
        var handle = await CreateAsync(session, ProgramKind.Sleeper, Rendezvous.Main);
        if (when != "idle")
        {
            session.Continue(handle);
            await Backend.WaitUntilAsync(handle.Pid, _ => handle.State == VictimState.Running);
        }

        if (when == "held by others")
        {
            Backend.SendSignal(handle.Pid, ExternalSignal.Stop);
            await Backend.WaitUntilAsync(handle.Pid, _ => handle.State == VictimState.HeldByOthers);
        }

        trace.Handle("before the kill", handle);
        Backend.SendSignal(handle.Pid, ExternalSignal.Kill);
        if (when == "idle")
        {
            // An idle victim is not waited on (as in DTrace): its death is seen once the client continues it.
            // Where the kernel defers the SIGKILL until the tracer resumes the victim, it dies on that continue.
            if (!Backend.DefersKillOfStoppedVictims)
            {
                await Backend.WaitUntilAsync(handle.Pid, o => o.Zombie || !o.Exists);
            }

            session.Continue(handle);
        }

        trace.Notification(await session.WaitForNotificationAsync(Forever));
        trace.Handle("after the kill", handle);
        await session.ReleaseAsync(handle);
        trace.Add($"after release: exists={Backend.Observe(handle.Pid).Exists} notifications={session.PendingNotifications}");
        Snapshot.Match(trace.Lines, snapshot);
    });

    [Fact]
    [Trait("Spec", "S21")]
    public Task The_lock_is_exclusive_and_misuse_is_an_error_not_a_hang() => Backend.RunAsync(async () =>
    {
        var pid = Backend.Spawn(ProgramKind.Sleeper);
        await using var session = NewSession();
        var handle = await session.GrabAsync(pid);
        session.Continue(handle);

        using (var scope = await session.LockAsync(handle))
        {
            await Assert.ThrowsAsync<LockMisuseException>(() => session.LockAsync(handle));
            Assert.True(ReadCalls(handle) >= 0);
        }

        Assert.Throws<LockMisuseException>(() => session.Unlock(handle));
        await session.ReleaseAsync(handle);
    });

    [Fact]
    [Trait("Spec", "S22")]
    [Trait("Spec", "S9")]
    public Task Teardown_kills_created_victims_and_leaves_grabbed_ones_running() => Backend.RunAsync(async () =>
    {
        var grabbedPid = Backend.Spawn(ProgramKind.Sleeper);
        var session = NewSession();
        var created = await CreateAsync(session, ProgramKind.Sleeper, Rendezvous.Main);
        session.Continue(created);
        var grabbed = await session.GrabAsync(grabbedPid);
        await session.SetBreakpointAsync(grabbed, "a.out`work", _ => { });
        session.Continue(grabbed);

        await session.DisposeAsync();

        Assert.Empty(session.Handles);
        await Backend.WaitUntilAsync(created.Pid, o => !o.Exists);
        var after = await Backend.WaitUntilAsync(grabbedPid, o => !o.Traced && !o.Stopped);
        Assert.True(after.Exists);
        Assert.True(Backend.TextIsOriginal(grabbedPid));
    });

    [Fact]
    [Trait("Spec", "S23")]
    public Task Every_call_on_a_released_handle_fails_clearly() => Backend.RunAsync(async () =>
    {
        await using var session = NewSession();
        var handle = await CreateAsync(session, ProgramKind.Loop, Rendezvous.Main, "1");
        await session.ReleaseAsync(handle);

        Assert.Throws<InvalidHandleException>(() => session.Continue(handle));
        await Assert.ThrowsAsync<InvalidHandleException>(() => session.ReleaseAsync(handle));
        await Assert.ThrowsAsync<InvalidHandleException>(() => session.LockAsync(handle));
        await Assert.ThrowsAsync<InvalidHandleException>(() => session.SetBreakpointAsync(handle, "a.out`work", _ => { }));
        Assert.Throws<InvalidHandleException>(() => handle.LookupSymbol("a.out`work"));
    });

    /// <summary>
    /// The milestones every backend reports alike. Preinit and postinit are left out: the fake's programs are
    /// static executables (no dynamic linker), the real fixtures are not.
    /// </summary>
    private static List<MilestoneKind> RecordMilestones(ProcHexSession session)
    {
        var seen = new List<MilestoneKind>();
        session.MilestoneReached = m =>
        {
            if (m.Kind is not (MilestoneKind.Preinit or MilestoneKind.Postinit))
            {
                seen.Add(m.Kind);
            }
        };
        return seen;
    }

    private static bool TryLookup(ProcessHandle handle, string objectSymbol)
    {
        try
        {
            handle.LookupSymbol(objectSymbol);
            return true;
        }
        catch (SymbolNotFoundException)
        {
            return false;
        }
    }
}
