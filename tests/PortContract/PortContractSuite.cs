using ProcHex.Ports;
using ProcHex.Scenarios;

namespace ProcHex.PortContract;

/// <summary>
/// What the core relies on from an adapter (docs/porting.md), proven at the port itself: no session, no control
/// loop, only <see cref="IProcessTracer"/> and <see cref="ITracedProcess"/> driven the way the core drives them.
/// Every adapter's test project derives a sealed class from it over its <see cref="IScenarioBackend"/>; a new adapter
/// is done when this suite and the scenario suite pass on it.
/// </summary>
public abstract class PortContractSuite(IScenarioBackend backend) : IAsyncLifetime
{
    private readonly List<ITracedProcess> _processes = [];

    /// <summary>The backend under test: its tracer, programs and view from outside.</summary>
    protected IScenarioBackend Backend { get; } = backend;

    /// <inheritdoc/>
    public Task InitializeAsync() => Task.CompletedTask;

    /// <inheritdoc/>
    public async Task DisposeAsync()
    {
        // Dispose releases (kills a created victim) whatever a failed test left behind.
        foreach (var process in _processes)
        {
            process.Dispose();
        }

        await Backend.DisposeAsync();
    }

    private static CancellationToken Deadline() => new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token;

    /// <summary>Creates a catalogue program, stopped before its first instruction, with control begun.</summary>
    private async Task<ITracedProcess> CreateAsync(ProgramKind kind, params string[] arguments)
    {
        var program = Backend.Program(kind);
        var process = await Backend.Tracer.CreateAsync(new ProcessStartRequest(program.File, program.WithArguments(arguments)), Deadline());
        _processes.Add(process);
        process.BeginControl();
        return process;
    }

    private static ulong Work(ITracedProcess process) =>
        process.Symbols.TryLookup("a.out", "work", out var address) ? address : throw new KeyNotFoundException("a.out`work");

    [Fact]
    [Trait("Contract", "RequestStop")]
    public Task A_stop_request_to_a_stopped_victim_completes_the_pending_wait_once() => Backend.RunAsync(async () =>
    {
        // Teardown wakes the control loop's wait this way whatever state the victim is in.
        var process = await CreateAsync(ProgramKind.Loop, "3");
        Assert.Null(process.TakeReadyStop());
        var wait = process.WaitForStopAsync(Deadline());

        process.RequestStop();

        var stop = await wait;
        Assert.Equal((StopKind.Stopped, StopReason.Interrupted), (stop.Kind, stop.Reason));
        Assert.Null(process.TakeReadyStop());
        process.Release(ReleaseMode.Kill);
    });

    [Fact]
    [Trait("Contract", "RequestStop")]
    [Trait("Spec", "S20")]
    public Task A_stop_request_completes_the_wait_of_a_victim_held_by_someone_else() => Backend.RunAsync(async () =>
    {
        var process = await CreateAsync(ProgramKind.Sleeper);
        process.Resume();
        Backend.SendSignal(process.Pid, ExternalSignal.Stop);
        StopEvent stop;
        while ((stop = await process.WaitForStopAsync(Deadline())).Reason != StopReason.StoppedByOthers)
        {
            Assert.Equal(StopKind.Stopped, stop.Kind);
            process.Resume();
        }

        process.AwaitExternalResume();
        var wait = process.WaitForStopAsync(Deadline());
        process.RequestStop();

        Assert.Equal(StopKind.Stopped, (await wait).Kind);
        Backend.SendSignal(process.Pid, ExternalSignal.Continue);
        process.Release(ReleaseMode.Kill);
    });

    [Fact]
    [Trait("Contract", "Breakpoints")]
    [Trait("Spec", "S14")]
    public Task Every_hit_is_reported_once_at_the_trap_address_and_stepped_over() => Backend.RunAsync(async () =>
    {
        var process = await CreateAsync(ProgramKind.Threads, "40");
        var work = Work(process);
        var driver = new PortDriver(process);
        driver.Plant(work);

        var end = await driver.RunToEnd();

        Assert.Equal((StopKind.Exited, ExitStatus.FromCode(0)), (end.Kind, end.Exit));
        Assert.Equal(40, driver.HitsAt[work]);
        Assert.Empty(driver.StaleHits);
    });

    [Fact]
    [Trait("Contract", "Breakpoints")]
    [Trait("Spec", "S15")]
    public Task A_trap_removed_at_a_hit_is_reported_at_most_once_more_per_thread_that_took_it_and_the_program_runs_on() => Backend.RunAsync(async () =>
    {
        // Four threads call work() without a pause: when the first hit is answered by removing the trap, others
        // may already have executed it. Their traps are no longer ours: rewound and resumed, never reported.
        var process = await CreateAsync(ProgramKind.Threads, "4000");
        var work = Work(process);
        var driver = new PortDriver(process) { OnBreakpoint = static (d, stop) => d.Remove(stop.ProgramCounter) };
        driver.Plant(work);

        var end = await driver.RunToEnd();

        Assert.Equal((StopKind.Exited, ExitStatus.FromCode(0)), (end.Kind, end.Exit));
        Assert.Equal(1, driver.Hits);
        // A thread that took the trap before the removal may still be reported once, at the trap's address.
        Assert.All(driver.StaleHits, stale => Assert.Equal(work, stale.ProgramCounter));
        Assert.True(driver.StaleHits.Select(s => s.ThreadId).Distinct().Count() == driver.StaleHits.Count, "a thread reported twice after the removal");
    });

    [Fact]
    [Trait("Contract", "Exec")]
    [Trait("Spec", "S12")]
    public Task After_an_exec_the_old_patches_are_forgotten_and_new_traps_are_hit() => Backend.RunAsync(async () =>
    {
        var process = await CreateAsync(ProgramKind.Exec, "3");
        var driver = new PortDriver(process)
        {
            OnExec = static d =>
            {
                d.Process.Symbols.Reset();
                d.Process.Symbols.Refresh();
                d.Plant(Work(d.Process));
            },
        };
        driver.Plant(Work(process));

        var end = await driver.RunToEnd();

        Assert.Equal((StopKind.Exited, ExitStatus.FromCode(0)), (end.Kind, end.Exit));
        Assert.Contains(StopReason.ExecDone, driver.Reasons);
        Assert.Equal(1 + 3, driver.Hits);
    });

    [Fact]
    [Trait("Contract", "Fork")]
    [Trait("Spec", "S13")]
    public Task A_fork_child_runs_untraced_on_clean_text_even_when_the_traps_stay_planted() => Backend.RunAsync(async () =>
    {
        // The core takes its traps out when a fork starts, but the adapter must not rely on it: the child gets a
        // copy of the text, and a trap left there would kill it (the fork program's parent exits 1 if the child
        // did not exit 7).
        var process = await CreateAsync(ProgramKind.Fork, "3");
        var driver = new PortDriver(process) { KeepTrapsAcrossFork = true };
        driver.Plant(Work(process));

        var end = await driver.RunToEnd();

        Assert.Equal((StopKind.Exited, ExitStatus.FromCode(0)), (end.Kind, end.Exit));
        Assert.Equal(3, driver.Hits);
    });

    [Fact]
    [Trait("Contract", "Fork")]
    [Trait("Spec", "S13")]
    public Task A_vfork_child_shares_the_text_the_core_cleaned_and_the_parent_keeps_its_traps() => Backend.RunAsync(async () =>
    {
        var process = await CreateAsync(ProgramKind.Vfork, "3");
        var driver = new PortDriver(process);
        driver.Plant(Work(process));

        var end = await driver.RunToEnd();

        Assert.Equal((StopKind.Exited, ExitStatus.FromCode(0)), (end.Kind, end.Exit));
        Assert.Equal(3, driver.Hits);
        Assert.Contains(StopReason.VforkDone, driver.Reasons);
    });

    [Fact]
    [Trait("Contract", "Release")]
    [Trait("Spec", "S9")]
    public Task Release_at_a_hit_hands_back_the_traps_other_threads_took_and_leaves_the_victim_running_untraced() => Backend.RunAsync(async () =>
    {
        // Released at its first hit, as the core releases: its traps taken out first (ControlLoop's quit), then
        // Release. Other threads may have executed the trap meanwhile: their SIGTRAPs are ours to take back, the
        // text is the file's, no thread is left in a stop, and the program runs to its end.
        var process = await CreateAsync(ProgramKind.Threads, "4000");
        var work = Work(process);
        var driver = new PortDriver(process);
        driver.Plant(work);
        process.Resume();
        var stop = await process.WaitForStopAsync(Deadline());
        Assert.Equal((StopReason.Breakpoint, work), (stop.Reason, stop.ProgramCounter));

        driver.Remove(work);
        process.Release(ReleaseMode.Run);

        Assert.True(Backend.TextIsOriginal(process.Pid), "a trap is left in the released victim's text");
        var seen = await Backend.WaitUntilAsync(process.Pid, static o => !o.Exists || o.Zombie || (!o.Traced && !o.Stopped));
        Assert.False(seen.Traced);
    });

    [Fact]
    [Trait("Contract", "Errors")]
    [Trait("Spec", "S2")]
    public Task Creating_a_file_that_does_not_exist_fails_with_kind_NotFound() => Backend.RunAsync(async () =>
    {
        var missing = Path.Combine(Path.GetTempPath(), "prochex-contract-no-such-program");
        var error = await Assert.ThrowsAsync<ProcessStartException>(async () =>
            await Backend.Tracer.CreateAsync(new ProcessStartRequest(missing, [missing]), Deadline()));
        Assert.Equal(TracerErrorKind.NotFound, error.Kind);
    });

    [Fact]
    [Trait("Contract", "Errors")]
    [Trait("Spec", "S3")]
    public Task Grabbing_a_process_that_has_ended_fails_with_kind_Gone() => Backend.RunAsync(async () =>
    {
        // Run to its end and reaped by the adapter: the pid names nothing now (pids are handed out in increasing
        // order, so none is reused this soon).
        var ended = await CreateAsync(ProgramKind.Loop, "0");
        Assert.Equal(StopKind.Exited, (await new PortDriver(ended).RunToEnd()).Kind);
        var pid = ended.Pid;

        var error = await Assert.ThrowsAsync<GrabException>(async () => await Backend.Tracer.GrabAsync(pid, GrabAccess.Control, Deadline()));
        Assert.Equal(TracerErrorKind.Gone, error.Kind);
    });

    [Fact]
    [Trait("Contract", "Errors")]
    [Trait("Spec", "S15")]
    public Task A_trap_at_an_unmapped_address_fails_typed_and_a_read_there_is_short() => Backend.RunAsync(async () =>
    {
        var process = await CreateAsync(ProgramKind.Loop, "3");
        const ulong unmapped = 0x10;

        var error = Assert.ThrowsAny<TracerException>(() => process.PlantBreakpoint(unmapped));
        Assert.Equal(TracerErrorKind.BadAddress, error.Kind);
        Assert.Equal(0, process.ReadMemory(unmapped, new byte[8]));

        var end = await new PortDriver(process).RunToEnd();
        Assert.Equal((StopKind.Exited, ExitStatus.FromCode(0)), (end.Kind, end.Exit));
    });
}
