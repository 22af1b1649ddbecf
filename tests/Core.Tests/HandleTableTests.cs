using NSubstitute;
using ProcHex.Ports;
using ProcHex.Core.Tests.Ports;

namespace ProcHex.Core.Tests;

/// <summary>Reference counting, the read-only cache and teardown (S4–S8, S22, S23).</summary>
public sealed class HandleTableTests
{
    [Fact]
    [Trait("Spec", "S4")]
    public async Task Read_only_grab_neither_stops_nor_controls_and_is_cacheable()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();

        var handle = await session.GrabAsync(500, GrabMode.ReadOnly);

        Assert.Equal(VictimState.Observed, handle.State);
        Assert.True(handle.IsReadOnly);
        Assert.True(handle.Victim.Cacheable);
        await tracer.Tracer.Received(1).GrabAsync(500, GrabAccess.ReadOnly, Arg.Any<CancellationToken>());
        tracer.Last.Process.DidNotReceive().BeginControl();
        tracer.Last.Process.DidNotReceive().Resume();
    }

    [Fact]
    [Trait("Spec", "S4")]
    public async Task A_backend_failure_on_a_read_only_handle_is_a_typed_error_keeping_the_message_and_errno()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var handle = await session.GrabAsync(500, GrabMode.ReadOnly);
        var denied = new TracerException("cannot read the mappings of pid 500: permission denied", TracerErrorKind.PermissionDenied, 13);
        tracer.Last.Symbols.Objects.Returns(_ => throw denied);

        var objects = Assert.Throws<ProcHexException>(() => handle.Objects);
        var lookup = Assert.Throws<ProcHexException>(() => handle.LookupSymbol("libc.so.6`malloc"));
        tracer.Last.Process.ReadThreads().Returns(_ => throw denied);
        Assert.Same(denied, Assert.Throws<ProcHexException>(() => handle.Threads).InnerException);

        Assert.Equal("cannot read the mappings of pid 500: permission denied", objects.Message);
        Assert.Equal((13, 13), (objects.ErrorNumber, lookup.ErrorNumber));
        Assert.Same(denied, lookup.InnerException);
    }

    [Fact]
    [Trait("Spec", "S14")]
    public async Task A_breakpoint_on_a_symbol_of_a_victim_that_cannot_be_read_is_a_typed_error_and_plants_nothing()
    {
        // Chaos seed 11: the victim died between the grab and the lookup; the backend's failure escaped untyped.
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var handle = await session.GrabAsync(500);
        var gone = new TracerException("cannot read the mappings of pid 500: no such file or directory", TracerErrorKind.NotFound, 2);
        tracer.Last.Symbols.TryLookup(Arg.Any<string?>(), Arg.Any<string>(), out Arg.Any<ulong>()).Returns(_ => throw gone);
        var planted = Plants(tracer.Last.Process);

        var error = await Assert.ThrowsAsync<ProcHexException>(() => session.SetBreakpointAsync(handle, "libc.so.6`malloc", _ => { }));

        Assert.Equal("cannot read the mappings of pid 500: no such file or directory", error.Message);
        Assert.Equal(2, error.ErrorNumber);
        Assert.Equal(planted, Plants(tracer.Last.Process));
    }

    private static int Plants(ITracedProcess process) =>
        process.ReceivedCalls().Count(c => c.GetMethodInfo().Name == nameof(ITracedProcess.PlantBreakpoint));

    [Fact]
    [Trait("Spec", "S5")]
    public async Task Grabbing_a_held_pid_returns_the_same_handle_with_another_reference_at_the_front()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var first = await session.GrabAsync(500, GrabMode.ReadOnly);
        await session.GrabAsync(501, GrabMode.ReadOnly);

        var again = await session.GrabAsync(500, GrabMode.ReadOnly);

        Assert.Same(first, again);
        Assert.Equal(2, first.Victim.References);
        Assert.Equal([500, 501], session.Handles.Select(h => h.Pid));
        await tracer.Tracer.Received(1).GrabAsync(500, Arg.Any<GrabAccess>(), Arg.Any<CancellationToken>());
    }

    [Fact]
    [Trait("Spec", "S6")]
    public async Task A_cached_read_only_handle_asked_for_control_goes_stale_and_a_controlling_one_is_grabbed()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var readOnly = await session.GrabAsync(500, GrabMode.ReadOnly);

        var control = await session.GrabAsync(500, GrabMode.Control);

        Assert.NotSame(readOnly, control);
        Assert.True(readOnly.Victim.Stale);
        Assert.False(readOnly.Victim.Cacheable);
        Assert.Equal(0, session.Table.CachedCount);
        Assert.Same(control, await session.GrabAsync(500, GrabMode.ReadOnly));

        // The stale handle still works for whoever holds it, and is destroyed on its last release.
        await session.ReleaseAsync(readOnly);
        Assert.Equal(VictimState.Released, readOnly.State);
        Assert.NotEqual(VictimState.Released, control.State);
    }

    [Fact]
    [Trait("Spec", "S6")]
    public async Task An_unreferenced_stale_handle_is_destroyed_at_the_upgrade()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var readOnly = await session.GrabAsync(500, GrabMode.ReadOnly);
        await session.ReleaseAsync(readOnly); // cached, no references

        await session.GrabAsync(500, GrabMode.Control);

        Assert.Equal(VictimState.Released, readOnly.State);
        Assert.Single(session.Handles);
    }

    [Fact]
    [Trait("Spec", "S7")]
    [Trait("Spec", "S8")]
    public async Task The_cache_keeps_at_most_its_limit_and_evicts_the_least_recently_used_unreferenced_handle()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session(lruLimit: 2);
        var a = await session.GrabAsync(1001, GrabMode.ReadOnly);
        var b = await session.GrabAsync(1002, GrabMode.ReadOnly);
        await session.ReleaseAsync(a);
        await session.ReleaseAsync(b);
        Assert.Equal(VictimState.Observed, a.State); // S8: cached, within the limit
        await session.GrabAsync(1001, GrabMode.ReadOnly); // a is now the most recent
        await session.ReleaseAsync(a);

        var c = await session.GrabAsync(1003, GrabMode.ReadOnly);

        Assert.Equal(VictimState.Released, b.State); // least recently used, unreferenced
        Assert.Equal(VictimState.Observed, a.State);
        Assert.Equal([1003, 1001], session.Handles.Select(h => h.Pid));
        await session.ReleaseAsync(c);
        Assert.Equal(2, session.Table.IdleCachedCount);
    }

    [Fact]
    [Trait("Spec", "S7")]
    public async Task A_referenced_handle_is_never_evicted_even_when_the_cache_is_full()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session(lruLimit: 1);
        var a = await session.GrabAsync(1001, GrabMode.ReadOnly);

        var b = await session.GrabAsync(1002, GrabMode.ReadOnly);

        Assert.Equal(VictimState.Observed, a.State);
        Assert.Equal(2, session.Table.CachedCount);
        await session.ReleaseAsync(a); // over the limit: destroyed at once
        Assert.Equal(VictimState.Released, a.State);
        Assert.Equal(VictimState.Observed, b.State);
    }

    [Fact]
    [Trait("Spec", "S8")]
    public async Task A_controlled_handle_is_destroyed_when_its_last_reference_goes()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var handle = await session.GrabAsync(700);
        Assert.Same(handle, await session.GrabAsync(700));

        await session.ReleaseAsync(handle);
        Assert.Equal(VictimState.Idle, handle.State);
        await session.ReleaseAsync(handle);

        Assert.Equal(VictimState.Released, handle.State);
        Assert.Empty(session.Handles);
    }

    [Fact]
    [Trait("Spec", "S22")]
    public async Task Teardown_destroys_every_handle_most_recent_first()
    {
        var tracer = new TracerScript();
        var session = tracer.Session();
        var released = new List<int>();
        var handles = new List<ProcessHandle>();
        foreach (var pid in new[] { 11, 12, 13 })
        {
            handles.Add(await session.GrabAsync(pid, pid == 12 ? GrabMode.ReadOnly : GrabMode.Control));
            tracer.Last.Process.When(p => p.Release(Arg.Any<ReleaseMode>())).Do(_ => released.Add(pid));
        }

        await session.GrabAsync(11); // 11 becomes the most recent

        await session.DisposeAsync();

        Assert.Equal([11, 13, 12], released);
        Assert.All(handles, h => Assert.Equal(VictimState.Released, h.State));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => session.GrabAsync(14));
    }

    [Fact]
    [Trait("Spec", "S23")]
    public async Task Every_call_on_a_released_handle_fails_clearly()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var handle = await session.GrabAsync(700);
        await session.ReleaseAsync(handle);

        const string Released = "pid 700: the process handle was released";
        Assert.Equal(Released, (await Assert.ThrowsAsync<InvalidHandleException>(() => session.ReleaseAsync(handle))).Message);
        Assert.Equal(Released, Assert.Throws<InvalidHandleException>(() => session.Continue(handle)).Message);
        await Assert.ThrowsAsync<InvalidHandleException>(() => session.LockAsync(handle));
        Assert.Throws<InvalidHandleException>(() => session.Unlock(handle));
        await Assert.ThrowsAsync<InvalidHandleException>(() => session.SetBreakpointAsync(handle, 0x1000, _ => { }));
        Assert.Throws<InvalidHandleException>(() => handle.LookupSymbol("main"));
        Assert.Throws<InvalidHandleException>(() => handle.ReadMemory(0x1000, new byte[1]));
        Assert.Throws<InvalidHandleException>(() => handle.Objects);
    }

    [Fact]
    [Trait("Spec", "S23")]
    public async Task A_handle_of_another_session_is_unknown_here()
    {
        var tracer = new TracerScript();
        await using var mine = tracer.Session();
        await using var theirs = tracer.Session();
        var handle = await theirs.GrabAsync(800);

        var error = await Assert.ThrowsAsync<InvalidHandleException>(() => mine.ReleaseAsync(handle));
        Assert.Equal("pid 800: the process handle does not belong to this session", error.Message);
    }

    [Fact]
    [Trait("Spec", "S3")]
    public async Task Breakpoints_need_a_control_loop()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var readOnly = await session.GrabAsync(900, GrabMode.ReadOnly);
        var noMonitor = await session.GrabAsync(901, GrabMode.ControlWithoutMonitor);

        await Assert.ThrowsAsync<ProcHexException>(() => session.SetBreakpointAsync(readOnly, 0x1000, _ => { }));
        await Assert.ThrowsAsync<ProcHexException>(() => session.SetBreakpointAsync(noMonitor, 0x1000, _ => { }));
        Assert.Equal(VictimState.Grabbed, noMonitor.State);
        await session.ReleaseAsync(noMonitor);
        tracer.Last.Process.Received(1).Release(ReleaseMode.Run);
    }

    [Fact]
    [Trait("Spec", "S23")]
    public async Task Symbol_lookups_that_miss_say_what_is_missing()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var handle = await session.GrabAsync(900, GrabMode.ReadOnly);

        Assert.Equal(PortScript.WorkAddress, handle.LookupSymbol("a.out`work"));
        Assert.Equal("pid 900: no object named 'libnope.so' is loaded",
            Assert.Throws<SymbolNotFoundException>(() => handle.LookupSymbol("libnope.so`f")).Message);
        Assert.Equal("pid 900: a.out has no symbol 'nope'",
            Assert.Throws<SymbolNotFoundException>(() => handle.LookupSymbol("a.out`nope")).Message);
        Assert.Equal("pid 900: no object defines symbol 'nope'",
            Assert.Throws<SymbolNotFoundException>(() => handle.LookupSymbol("nope")).Message);
        Assert.Throws<ArgumentException>(() => handle.LookupSymbol("a.out`"));
    }
}
