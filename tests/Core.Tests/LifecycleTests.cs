using NSubstitute;
using ProcHex.Ports;
using ProcHex.Core.Tests.Ports;

namespace ProcHex.Core.Tests;

/// <summary>Create, grab, continue and release against substitute ports (S1–S3, S9–S12, S18).</summary>
public sealed class LifecycleTests
{
    private static readonly CreateOptions AtCreate = new() { StopAt = Rendezvous.Create };

    [Fact]
    [Trait("Spec", "S1")]
    public async Task Create_returns_idle_at_the_create_rendezvous_with_one_reference_and_becomes_target()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();

        var handle = await session.CreateAsync("/bin/victim", ["victim"], AtCreate);

        Assert.Equal(VictimState.Idle, handle.State);
        Assert.Equal(1, handle.Victim.References);
        Assert.Equal(handle.Pid, session.TargetPid);
        await tracer.Tracer.Received(1).CreateAsync(
            Arg.Is<ProcessStartRequest>(r => r.File == "/bin/victim" && r.Arguments.SequenceEqual(new[] { "victim" })),
            Arg.Any<CancellationToken>());
    }

    [Fact]
    [Trait("Spec", "S1")]
    [Trait("Spec", "S18")]
    public async Task Create_at_main_runs_to_the_main_breakpoint_and_parks_there()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();

        var creating = session.CreateAsync("/bin/victim", ["victim"], new CreateOptions { StopAt = Rendezvous.Main });
        tracer.Last.HitBreakpoint(PortScript.MainAddress);
        var handle = await creating;

        Assert.Equal(VictimState.Idle, handle.State);
        tracer.Last.Process.Received(1).PlantBreakpoint(PortScript.MainAddress);
        // S10: parked idle means the main breakpoint is out of the text.
        tracer.Last.Process.Received(1).RemoveBreakpoint(Arg.Is<BreakpointPatch>(p => p.Address == PortScript.MainAddress));
    }

    [Fact]
    [Trait("Spec", "S12")]
    public async Task Control_setup_begins_tracing_before_running_and_plants_rtld_and_main_breakpoints()
    {
        var tracer = new TracerScript();
        var rtld = Substitute.For<IRtldAgent>();
        rtld.EnableEvents().Returns(true);
        rtld.TryGetEventAddress(Arg.Any<RtldEventKind>(), out Arg.Any<ulong>()).Returns(ci =>
        {
            ci[1] = PortScript.RtldAddress; // glibc: one r_brk for every event
            return true;
        });
        tracer.NewProcess = (pid, access) =>
        {
            var script = new PortScript(pid, access);
            script.Process.OpenRtldAgent().Returns(rtld);
            return script;
        };
        await using var session = tracer.Session();

        var handle = await session.CreateAsync("/bin/victim", ["victim"], AtCreate);
        session.Continue(handle);
        await tracer.Last.WaitForWaitsAsync(1);

        Received.InOrder(() =>
        {
            tracer.Last.Process.BeginControl();
            tracer.Last.Process.PlantBreakpoint(PortScript.RtldAddress);
            tracer.Last.Process.PlantBreakpoint(PortScript.MainAddress);
            // Parked idle at create (S10) took them out; continuing puts them back before the victim runs.
            tracer.Last.Process.PlantBreakpoint(PortScript.RtldAddress);
            tracer.Last.Process.PlantBreakpoint(PortScript.MainAddress);
            tracer.Last.Process.Resume();
        });
        // Three events at one address: one trap.
        tracer.Last.Process.Received(2).PlantBreakpoint(PortScript.RtldAddress); // planted, removed while idle, planted again
    }

    [Fact]
    [Trait("Spec", "S2")]
    public async Task Create_of_a_file_that_cannot_run_says_failed_to_execute_with_the_reason_and_registers_nothing()
    {
        var tracer = new TracerScript();
        tracer.CreateError = new ProcessStartException("No such file or directory", TracerErrorKind.NotFound, 2);
        await using var session = tracer.Session();

        var error = await Assert.ThrowsAsync<CreateFailedException>(() => session.CreateAsync("/no/such", ["x"]));

        Assert.Equal("failed to execute /no/such: No such file or directory", error.Message);
        Assert.Equal(2, error.ErrorNumber);
        Assert.Empty(session.Handles);
        Assert.Null(session.TargetPid);
    }

    [Theory]
    [Trait("Spec", "S2")]
    [InlineData("exit", "failed to control pid 100: process exited with status 3")]
    [InlineData("signal", "failed to control pid 100: process died from signal 9")]
    [InlineData("lost", "failed to control pid 100: process exec'd set-id or unobservable program")]
    public async Task Create_whose_victim_ends_before_the_rendezvous_says_why_and_lets_it_go(string how, string expected)
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();

        var creating = session.CreateAsync("/bin/victim", ["victim"], new CreateOptions { StopAt = Rendezvous.Main });
        var victim = tracer.Last;
        victim.Push(how switch
        {
            "exit" => StopEvent.Exited(100, ExitStatus.FromCode(3)),
            "signal" => StopEvent.Exited(100, ExitStatus.FromSignal(9)),
            _ => StopEvent.Lost(100, "exec of a set-id program"),
        });

        var error = await Assert.ThrowsAsync<CreateFailedException>(() => creating);

        Assert.Equal(expected, error.Message);
        Assert.Empty(session.Handles);
        Assert.Equal(0, session.PendingNotifications);
        victim.Process.Received(1).Release(Arg.Any<ReleaseMode>());
        victim.Process.Received(1).Dispose();
    }

    [Fact]
    [Trait("Spec", "S2")]
    public async Task Create_of_a_victim_whose_image_cannot_be_read_is_lost_with_the_S2_message()
    {
        // What a real unprivileged tracer meets creating a program it may not read (issue 8): the backend reports the
        // loss, and nothing of the image can be read (the kernel gives a non-dumpable process's /proc files to root).
        // The setup must carry on to the wait that says so, not end the loop on the failed lookup of main.
        var tracer = new TracerScript();
        var denied = new TracerException("cannot read the mappings of pid 100: permission denied", TracerErrorKind.PermissionDenied, 13);
        tracer.NewProcess = (pid, access) =>
        {
            var script = new PortScript(pid, access);
            script.Symbols.TryLookup(Arg.Any<string?>(), Arg.Any<string>(), out Arg.Any<ulong>()).Returns(_ => throw denied);
            script.Symbols.When(s => s.Refresh()).Do(_ => throw denied);
            script.Push(StopEvent.Lost(pid, "process exec'd set-id or unobservable program"));
            return script;
        };
        await using var session = tracer.Session();

        var error = await Assert.ThrowsAsync<CreateFailedException>(
            () => session.CreateAsync("/bin/victim", ["victim"], new CreateOptions { StopAt = Rendezvous.Main }));

        Assert.Equal("failed to control pid 100: process exec'd set-id or unobservable program", error.Message);
        Assert.Empty(session.Handles);
        tracer.Last.Process.Received(1).Release(Arg.Any<ReleaseMode>());
    }

    [Fact]
    [Trait("Spec", "S3")]
    public async Task Grab_for_control_parks_at_the_grab_rendezvous_and_failures_name_the_pid_and_reason()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();

        var handle = await session.GrabAsync(4242);
        Assert.Equal(VictimState.Idle, handle.State);
        Assert.Equal(4242, session.TargetPid);

        tracer.GrabError = new GrabException("no such process", TracerErrorKind.Gone, 3);
        var error = await Assert.ThrowsAsync<GrabFailedException>(() => session.GrabAsync(99999));
        Assert.Equal("failed to grab pid 99999: no such process", error.Message);

        var self = await Assert.ThrowsAsync<GrabFailedException>(() => session.GrabAsync(Environment.ProcessId));
        Assert.Contains("our own process", self.Message, StringComparison.Ordinal);
        Assert.Single(session.Handles);
    }

    [Fact]
    [Trait("Spec", "S9")]
    public async Task Release_kills_what_we_created_and_lets_run_what_we_grabbed()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var created = await session.CreateAsync("/bin/victim", ["victim"], AtCreate);
        var createdScript = tracer.Last;
        var grabbed = await session.GrabAsync(777);
        var grabbedScript = tracer.Last;

        await session.ReleaseAsync(created);
        await session.ReleaseAsync(grabbed);

        createdScript.Process.Received(1).Release(ReleaseMode.Kill);
        grabbedScript.Process.Received(1).Release(ReleaseMode.Run);
        Assert.Equal(VictimState.Released, created.State);
        Assert.Equal(VictimState.Released, grabbed.State);
    }

    [Fact]
    [Trait("Spec", "S9")]
    public async Task Release_of_a_running_victim_stops_it_restores_the_text_then_lets_it_go()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var handle = await session.GrabAsync(777);
        var script = tracer.Last;
        session.Continue(handle);
        await script.WaitForWaitsAsync(1);
        Assert.Equal(VictimState.Running, handle.State);
        script.Process.ClearReceivedCalls(); // forget the removal made while it idled at the rendezvous

        await session.ReleaseAsync(handle);

        Received.InOrder(() =>
        {
            script.Process.RequestStop();
            script.Process.RemoveBreakpoint(Arg.Is<BreakpointPatch>(p => p.Address == PortScript.MainAddress));
            script.Process.Release(ReleaseMode.Run);
        });
    }

    [Fact]
    [Trait("Spec", "S11")]
    public async Task Continue_wakes_an_idle_victim_and_does_nothing_to_a_running_one()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var handle = await session.CreateAsync("/bin/victim", ["victim"], AtCreate);

        session.Continue(handle);
        await tracer.Last.WaitForWaitsAsync(1);
        Assert.Equal(VictimState.Running, handle.State);

        session.Continue(handle);
        session.Continue(handle);
        Assert.Equal(VictimState.Running, handle.State);
        tracer.Last.Process.Received(1).Resume();
    }

    [Fact]
    [Trait("Spec", "S10")]
    public async Task Idle_victim_has_no_breakpoint_in_its_text_and_gets_them_back_on_continue()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var handle = await session.CreateAsync("/bin/victim", ["victim"], AtCreate);
        var script = tracer.Last;

        // Main was planted during setup and taken out when the victim parked.
        script.Process.Received(1).PlantBreakpoint(PortScript.MainAddress);
        script.Process.Received(1).RemoveBreakpoint(Arg.Is<BreakpointPatch>(p => p.Address == PortScript.MainAddress));
        Assert.False(handle.Victim.Breakpoints.IsActive(PortScript.MainAddress));

        // A client breakpoint set while idle is recorded but not written.
        var bp = await session.SetBreakpointAsync(handle, PortScript.WorkAddress, _ => { });
        script.Process.DidNotReceive().PlantBreakpoint(PortScript.WorkAddress);
        Assert.False(bp.IsActive);

        session.Continue(handle);
        await script.WaitForWaitsAsync(1);

        script.Process.Received(2).PlantBreakpoint(PortScript.MainAddress);
        script.Process.Received(1).PlantBreakpoint(PortScript.WorkAddress);
        Assert.True(bp.IsActive);
    }

    [Fact]
    [Trait("Spec", "S18")]
    public async Task Main_breakpoint_does_not_stop_a_victim_that_did_not_ask_for_main()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var handle = await session.CreateAsync("/bin/victim", ["victim"], AtCreate);
        var script = tracer.Last;
        session.Continue(handle);

        script.HitBreakpoint(PortScript.MainAddress);
        await script.WaitForWaitsAsync(2);

        Assert.Equal(VictimState.Running, handle.State);
        script.Process.Received(1).StepOverBreakpoint(Arg.Any<int>(), Arg.Is<BreakpointPatch>(p => p.Address == PortScript.MainAddress));
        Assert.Equal(1, handle.Victim.Breakpoints.TryGet(PortScript.MainAddress, out var site) ? site.Hits : -1);
    }

    [Fact]
    [Trait("Spec", "S12")]
    public async Task Without_a_main_symbol_a_main_rendezvous_parks_at_the_first_stop()
    {
        var tracer = new TracerScript();
        tracer.NewProcess = (pid, access) => new PortScript(pid, access, withMain: false);
        await using var session = tracer.Session();

        var handle = await session.CreateAsync("/bin/stripped", ["stripped"], new CreateOptions { StopAt = Rendezvous.Main });

        Assert.Equal(VictimState.Idle, handle.State);
        tracer.Last.Process.DidNotReceive().Resume();
    }
}
