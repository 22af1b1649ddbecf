using NSubstitute;
using ProcHex.Ports;
using ProcHex.Core.Tests.Ports;

namespace ProcHex.Core.Tests;

/// <summary>Dynamic-linker events (S17).</summary>
public sealed class RtldTests
{
    private readonly TracerScript _tracer = new();
    private readonly IRtldAgent _rtld = Substitute.For<IRtldAgent>();
    private readonly List<LoadedObject> _objects = [new("/bin/victim", 0x400000)];

    public RtldTests()
    {
        _rtld.EnableEvents().Returns(true);
        _rtld.TryGetEventAddress(Arg.Any<RtldEventKind>(), out Arg.Any<ulong>()).Returns(ci =>
        {
            ci[1] = PortScript.RtldAddress;
            return true;
        });
        _tracer.NewProcess = (pid, access) =>
        {
            var script = new PortScript(pid, access);
            script.Process.OpenRtldAgent().Returns(_rtld);
            script.Symbols.Objects.Returns(_ => _objects.ToList());
            return script;
        };
    }

    [Fact]
    [Trait("Spec", "S17")]
    public async Task Preinit_refreshes_symbols_reports_the_new_libraries_and_parks_when_asked()
    {
        await using var session = _tracer.Session();
        var changes = new List<LibraryListChange>();
        session.LibraryListChanged = changes.Add;

        var creating = session.CreateAsync("/bin/victim", ["victim"], new CreateOptions { StopAt = Rendezvous.Preinit });
        var script = _tracer.Last;
        _objects.Add(new LoadedObject("/lib/libc.so.6", 0x7f0000000000));
        _rtld.ReadEventMessage().Returns(new RtldEventMessage(RtldEventKind.Preinit, RtldState.Consistent));
        script.HitBreakpoint(PortScript.RtldAddress);
        var handle = await creating;

        Assert.Equal(VictimState.Idle, handle.State);
        var change = Assert.Single(changes);
        Assert.Equal(RtldEventKind.Preinit, change.Event);
        Assert.Contains(change.Added, o => o.Name == "libc.so.6");
        script.Symbols.Received().Refresh();
    }

    [Fact]
    [Trait("Spec", "S17")]
    public async Task Dlactivity_in_flux_is_ignored_and_a_consistent_one_reports_added_and_removed()
    {
        await using var session = _tracer.Session();
        var changes = new List<LibraryListChange>();
        session.LibraryListChanged = changes.Add;
        var handle = await session.CreateAsync("/bin/victim", ["victim"], new CreateOptions { StopAt = Rendezvous.Create });
        var script = _tracer.Last;
        session.Continue(handle);
        changes.Clear();

        _objects.Add(new LoadedObject("/tmp/libplugin.so", 0x7f1000000000));
        _rtld.ReadEventMessage().Returns(new RtldEventMessage(RtldEventKind.DlActivity, RtldState.Adding));
        script.HitBreakpoint(PortScript.RtldAddress);
        await script.WaitForWaitsAsync(2);
        Assert.Empty(changes);

        _rtld.ReadEventMessage().Returns(new RtldEventMessage(RtldEventKind.DlActivity, RtldState.Consistent));
        script.HitBreakpoint(PortScript.RtldAddress);
        await script.WaitForWaitsAsync(3);
        // The first consistent report carries everything mapped so far, the executable included.
        Assert.Equal(["victim", "libplugin.so"], Assert.Single(changes).Added.Select(o => o.Name));

        _objects.RemoveAt(1);
        script.HitBreakpoint(PortScript.RtldAddress);
        await script.WaitForWaitsAsync(4);
        Assert.Equal("libplugin.so", Assert.Single(changes[1].Removed).Name);
        Assert.Equal(VictimState.Running, handle.State);
    }

    [Fact]
    [Trait("Spec", "S17")]
    [Trait("Spec", "S19")]
    public async Task A_failing_library_callback_becomes_a_notification_carrying_its_message()
    {
        await using var session = _tracer.Session();
        session.LibraryListChanged = _ => throw new InvalidOperationException("cannot create probes for libplugin.so");
        var handle = await session.CreateAsync("/bin/victim", ["victim"], new CreateOptions { StopAt = Rendezvous.Create });
        var script = _tracer.Last;
        session.Continue(handle);

        _objects.Add(new LoadedObject("/tmp/libplugin.so", 0x7f1000000000));
        _rtld.ReadEventMessage().Returns(new RtldEventMessage(RtldEventKind.DlActivity, RtldState.Consistent));
        script.HitBreakpoint(PortScript.RtldAddress);

        var note = await session.WaitForNotificationAsync(TimeSpan.FromSeconds(10));
        Assert.NotNull(note);
        Assert.Equal(NotificationKind.Error, note.Kind);
        Assert.Equal("cannot create probes for libplugin.so", note.Message);
        await script.WaitForWaitsAsync(2);
        Assert.Equal(VictimState.Running, handle.State);
    }

    [Fact]
    [Trait("Spec", "S17")]
    public async Task Without_a_dynamic_linker_a_preinit_request_parks_at_main()
    {
        _tracer.NewProcess = (pid, access) =>
        {
            var script = new PortScript(pid, access);
            script.Process.OpenRtldAgent().Returns((IRtldAgent?)null);
            return script;
        };
        await using var session = _tracer.Session();

        var creating = session.CreateAsync("/bin/static", ["static"], new CreateOptions { StopAt = Rendezvous.Preinit });
        _tracer.Last.HitBreakpoint(PortScript.MainAddress);
        var handle = await creating;

        Assert.Equal(VictimState.Idle, handle.State);
    }
}
