using ProcHex.Ports;

namespace ProcHex.Backends.Fake.Tests;

public class SymbolAndRtldTests
{
    private readonly TestKit _kit = new();

    [Fact]
    public void Lookup_by_a_out_basename_path_and_across_all_objects()
    {
        var process = _kit.Create(_kit.Programs.Loop);
        var work = _kit.Programs.Loop.AddressOf("work");

        Assert.True(process.Symbols.TryLookup("a.out", "work", out var viaAOut));
        Assert.True(process.Symbols.TryLookup("loop", "work", out var viaName));
        Assert.True(process.Symbols.TryLookup(_kit.Programs.Loop.Path, "work", out var viaPath));
        Assert.True(process.Symbols.TryLookup(null, "work", out var viaSearch));
        Assert.All(new[] { viaAOut, viaName, viaPath, viaSearch }, a => Assert.Equal(work, a));
        Assert.True(process.Symbols.TryLookup(null, "_dl_preinit", out _));
        Assert.False(process.Symbols.TryLookup("a.out", "_dl_preinit", out _));
        Assert.False(process.Symbols.TryLookup(null, "nothing", out _));
    }

    [Fact]
    public void Resolve_names_object_symbol_and_offset()
    {
        var process = _kit.Create(_kit.Programs.Loop);
        var work = _kit.Programs.Loop.AddressOf("work");

        Assert.True(process.Symbols.TryResolve(work + 3, out var location));

        Assert.Equal("loop`work+0x3", location.ToString());
        Assert.False(process.Symbols.TryResolve(0x10, out _));
        Assert.Equal(_kit.Programs.Loop.Path, process.Symbols.Objects[0].Path);
    }

    [Fact]
    [Trait("Spec", "S17")]
    public void Rtld_events_arrive_in_order_preinit_postinit_main_then_dlopen_activity()
    {
        var process = _kit.Create(_kit.Programs.Dlopen, "2");
        process.BeginControl();
        var agent = Assert.IsAssignableFrom<IRtldAgent>(process.OpenRtldAgent());
        Assert.True(agent.EnableEvents());
        var patches = new List<BreakpointPatch>();
        foreach (var kind in new[] { RtldEventKind.Preinit, RtldEventKind.Postinit, RtldEventKind.DlActivity })
        {
            Assert.True(agent.TryGetEventAddress(kind, out var address));
            patches.Add(process.PlantBreakpoint(address));
        }

        patches.Add(process.PlantBreakpoint(TestKit.Address(process, "main", "a.out")));
        process.Resume();

        var seen = new List<string>();
        while (true)
        {
            var stop = _kit.NextStop(process);
            if (stop.Kind == StopKind.Exited)
            {
                break;
            }

            var patch = patches.Single(p => p.Address == stop.ProgramCounter);
            seen.Add(stop.ProgramCounter == patches[3].Address ? "main" : $"{agent.ReadEventMessage().Kind}/{agent.ReadEventMessage().State}");
            if (stop.ProgramCounter == patches[0].Address)
            {
                process.Symbols.Refresh();
                Assert.Contains(process.Symbols.Objects, o => o.Path == FakeDynamicLinker.Default.Path);
            }

            process.StepOverBreakpoint(stop.ThreadId, patch);
            process.Resume();
        }

        Assert.Equal(
            ["Preinit/Consistent", "Postinit/Consistent", "main", "DlActivity/Adding", "DlActivity/Consistent", "DlActivity/Deleting", "DlActivity/Consistent"],
            seen);
    }

    [Fact]
    [Trait("Spec", "S17")]
    public void A_refresh_after_dlopen_shows_the_library_and_its_symbols()
    {
        var process = _kit.Create(_kit.Programs.Dlopen, "1");
        process.BeginControl();
        var agent = process.OpenRtldAgent()!;
        agent.TryGetEventAddress(RtldEventKind.DlActivity, out var activity);
        var patch = process.PlantBreakpoint(activity);
        process.Resume();
        var stop = _kit.NextStop(process);
        Assert.Equal(RtldState.Adding, agent.ReadEventMessage().State);
        process.StepOverBreakpoint(stop.ThreadId, patch);
        process.Resume();
        _kit.NextStop(process);
        Assert.Equal(RtldState.Consistent, agent.ReadEventMessage().State);
        Assert.False(process.Symbols.TryLookup(null, "libwork", out _));

        process.Symbols.Refresh();

        Assert.True(process.Symbols.TryLookup("libprochex-test.so", "libwork", out var libwork));
        Assert.True(process.Symbols.TryResolve(libwork, out var location));
        Assert.Equal("libprochex-test.so`libwork", location.ToString());
        var library = process.Symbols.Objects.Single(o => o.Name == "libprochex-test.so");
        Assert.Equal(library.BaseAddress + _kit.Programs.Library.Symbols["libwork"], libwork);
    }

    [Fact]
    public void A_static_image_has_no_rtld_agent_and_still_reaches_main()
    {
        var image = new FakeImageBuilder("/bin/static").Static().Function("main").Program(Steps.Exit(0)).Build();
        _kit.Kernel.Register(image);
        var process = _kit.Create(image);
        process.BeginControl();

        Assert.Null(process.OpenRtldAgent());
        Assert.Equal(image.Entry, Assert.Single(process.ReadThreads()).ProgramCounter);
        process.PlantBreakpoint(image.AddressOf("main"));
        process.Resume();
        Assert.Equal(StopEvent.Stopped(StopReason.Breakpoint, process.Pid, image.AddressOf("main")), _kit.NextStop(process));
    }

    [Fact]
    public void A_linker_sharing_one_event_address_tells_events_apart_by_message()
    {
        var linker = new FakeDynamicLinker("/lib/ld-shared.so", sharedEventAddress: true);
        var image = new FakeImageBuilder("/bin/shared").Dynamic(linker).Function("main").Program(Steps.Exit(0)).Build();
        _kit.Kernel.Register(image);
        var process = _kit.Create(image);
        process.BeginControl();
        var agent = process.OpenRtldAgent()!;
        agent.TryGetEventAddress(RtldEventKind.Preinit, out var preinit);
        agent.TryGetEventAddress(RtldEventKind.Postinit, out var postinit);
        Assert.Equal(preinit, postinit);
        var patch = process.PlantBreakpoint(preinit);
        process.Resume();

        var stop = _kit.NextStop(process);
        var first = agent.ReadEventMessage().Kind;
        process.StepOverBreakpoint(stop.ThreadId, patch);
        process.Resume();
        _kit.NextStop(process);

        Assert.Equal((RtldEventKind.Preinit, RtldEventKind.Postinit), (first, agent.ReadEventMessage().Kind));
    }

    [Fact]
    public void An_agent_of_the_image_before_exec_is_stale()
    {
        var process = _kit.Start(_kit.Programs.Exec, "1");
        process.RequestStop();
        _kit.NextStop(process);
        var agent = process.OpenRtldAgent()!;
        process.Resume();
        Assert.Equal(StopReason.ExecDone, _kit.NextStop(process).Reason);

        Assert.Throws<TracerException>(() => agent.ReadEventMessage());
        Assert.Equal(RtldEventKind.Preinit, process.OpenRtldAgent()!.ReadEventMessage().Kind);
    }
}
