using ProcHex.Elf;
using System.Buffers.Binary;
using ProcHex.Backends.Linux.Rtld;
using ProcHex.Backends.Linux.Symbols;
using ProcHex.Ports;

namespace ProcHex.Backends.Linux.Tests;

/// <summary>
/// The glibc agent against real data: our own process is dynamically linked, so its r_debug and link map are
/// real and walkable through /proc/self/mem. Event sequences are replayed by scripting r_debug's state over the
/// real list.
/// </summary>
[Trait("Backend", "Linux")]
[Trait("Spec", "S17")]
public sealed class RtldTests(CompiledFixtures fixtures) : IClassFixture<CompiledFixtures>
{
    private static readonly ProcMapsSymbolTable Self = new(Environment.ProcessId, ProcMemory.Self);

    [Fact]
    public void Our_executables_DT_DEBUG_is_the_linkers_r_debug()
    {
        var linker = LinkerOf(Self);
        var fromDynamic = DynamicLinkerState.FindFromExecutable(ProcMemory.Self, Self.Executable!);

        Assert.NotNull(fromDynamic);
        Assert.Equal(Self.Lookup(linker.Path, "_r_debug"), fromDynamic.Value.Address);
        Assert.True(fromDynamic.Value.IsInitialized);
        Assert.Equal(RtldState.Consistent, fromDynamic.Value.State);
        Assert.Equal(Self.Lookup(linker.Path, "_dl_debug_state"), fromDynamic.Value.BreakAddress);
        Assert.Equal(linker.LoadBias, fromDynamic.Value.LinkerBase);
    }

    [Fact]
    public void Our_link_map_lists_the_executable_first_and_the_biases_the_maps_give()
    {
        var list = GlibcRtld.Create(ProcMemory.Self, DynamicLinkerState.FindFromExecutable(ProcMemory.Self, Self.Executable!)!.Value.Address, 0, 0).ReadLibraryList();

        Assert.Equal(string.Empty, list[0].Name);
        Assert.True(Self.Executable!.Contains(list[0].DynamicSection));
        Assert.Equal(0UL, list[0].Previous);
        var libc = list.Single(l => l.Name.EndsWith("/libc.so.6", StringComparison.Ordinal));
        Assert.True(Self.TryFindObject("libc.so.6", out var mapped));
        Assert.Equal(mapped.LoadBias, libc.LoadBias);
        Assert.Contains(list, l => l.Name.Contains("libcoreclr.so", StringComparison.Ordinal));
        for (var i = 1; i < list.Count; i++)
        {
            Assert.Equal(list[i - 1].Address, list[i].Previous);
        }
    }

    [Fact]
    public void The_agent_of_our_process_puts_preinit_and_dlactivity_on_r_brk_and_postinit_on_the_entry()
    {
        var agent = Assert.IsType<GlibcRtld>(GlibcRtldAgent.TryOpen(Environment.ProcessId, ProcMemory.Self, Self));
        var linker = LinkerOf(Self);

        Assert.True(agent.EnableEvents());
        Assert.True(agent.TryGetEventAddress(RtldEventKind.Preinit, out var preinit));
        Assert.True(agent.TryGetEventAddress(RtldEventKind.DlActivity, out var dlactivity));
        Assert.True(agent.TryGetEventAddress(RtldEventKind.Postinit, out var postinit));
        Assert.Equal(Self.Lookup(linker.Path, "_dl_debug_state"), preinit);
        Assert.Equal(preinit, dlactivity);
        Assert.Equal(ProcAuxv.Read(Environment.ProcessId).Entry, postinit);
        Assert.True(Self.Executable!.Contains(postinit));
        Assert.Equal(linker.Path, agent.LinkerPath);

        // We are long past startup: whatever hits now is library-list activity.
        Assert.Equal(new RtldEventMessage(RtldEventKind.DlActivity, RtldState.Consistent), agent.ReadEventMessage());
    }

    [Fact]
    public void A_running_fixture_with_dlopened_libraries_shows_them_in_the_list()
    {
        using var victim = new RunningFixture(fixtures.Pie, fixtures.LibraryA, fixtures.LibraryB);
        var symbols = new ProcMapsSymbolTable(victim.Pid, victim.Memory);
        var agent = Assert.IsType<GlibcRtld>(GlibcRtldAgent.TryOpen(victim.Pid, victim.Memory, symbols));

        var names = agent.ReadLibraryList().Select(l => l.Name).ToList();
        Assert.True(names.IndexOf(fixtures.LibraryA) > 0);
        Assert.True(names.IndexOf(fixtures.LibraryB) > names.IndexOf(fixtures.LibraryA));
        Assert.Equal(symbols.Lookup("ld-linux-x86-64.so.2", "_dl_debug_state"), agent.BreakAddress);
    }

    [Fact]
    public void Startup_and_later_dlopens_replayed_on_a_scripted_r_debug_by_history()
    {
        var (agent, script) = ScriptedAgent();

        Assert.Equal(new RtldEventMessage(RtldEventKind.DlActivity, RtldState.Adding), Hit(script, RDebug.RtAdd, agent));
        Assert.Equal(new RtldEventMessage(RtldEventKind.Preinit, RtldState.Consistent), Hit(script, RDebug.RtConsistent, agent));

        // A library initializer dlopens before main: its consistent state is dlactivity, not postinit.
        Assert.Equal(new RtldEventMessage(RtldEventKind.DlActivity, RtldState.Adding), Hit(script, RDebug.RtAdd, agent));
        Assert.Equal(new RtldEventMessage(RtldEventKind.DlActivity, RtldState.Consistent), Hit(script, RDebug.RtConsistent, agent));

        // The entry point: consistent after consistent.
        Assert.Equal(new RtldEventMessage(RtldEventKind.Postinit, RtldState.Consistent), Hit(script, RDebug.RtConsistent, agent));

        Assert.Equal(new RtldEventMessage(RtldEventKind.DlActivity, RtldState.Adding), Hit(script, RDebug.RtAdd, agent));
        Assert.Equal(new RtldEventMessage(RtldEventKind.DlActivity, RtldState.Consistent), Hit(script, RDebug.RtConsistent, agent));
        Assert.Equal(new RtldEventMessage(RtldEventKind.DlActivity, RtldState.Deleting), Hit(script, RDebug.RtDelete, agent));
        Assert.Equal(new RtldEventMessage(RtldEventKind.DlActivity, RtldState.Consistent), Hit(script, RDebug.RtConsistent, agent));
    }

    [Fact]
    public void The_hit_address_tells_postinit_from_r_brk_exactly()
    {
        var (agent, script) = ScriptedAgent();
        var brk = agent.BreakAddress;
        var entry = agent.EntryAddress;

        Assert.Equal(RtldEventKind.DlActivity, Hit(script, RDebug.RtAdd, agent, brk).Kind);
        Assert.Equal(RtldEventKind.Preinit, Hit(script, RDebug.RtConsistent, agent, brk).Kind);
        Assert.Equal(RtldEventKind.DlActivity, Hit(script, RDebug.RtConsistent, agent, brk).Kind); // (a dlmopen in an initializer)
        Assert.Equal(RtldEventKind.Postinit, Hit(script, RDebug.RtConsistent, agent, entry).Kind);
        Assert.Equal(RtldEventKind.DlActivity, Hit(script, RDebug.RtConsistent, agent, brk).Kind);
    }

    [Fact]
    public void An_unknown_r_state_is_an_error_not_a_guess()
    {
        var (agent, script) = ScriptedAgent();
        var error = Assert.Throws<ElfFormatException>(() => Hit(script, 7, agent));
        Assert.Contains("r_state 7", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_link_map_that_loops_is_an_error_not_a_hang()
    {
        const ulong first = 0x1000;
        var bytes = new byte[LinkMap.Size * 3];
        for (var i = 0; i < 3; i++)
        {
            var next = i == 2 ? first : first + (ulong)((i + 1) * LinkMap.Size);
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan((i * LinkMap.Size) + 24), next);
        }

        var error = Assert.Throws<ElfFormatException>(() => LinkMap.ReadList(new ArrayMemory(first, bytes), first));
        Assert.Equal("link_map list from 0x1000 loops back to 0x1000 after 3 entries", error.Message);
        Assert.Throws<ElfFormatException>(() => LinkMap.ReadList(new ArrayMemory(first, bytes), first, maxEntries: 2));
        Assert.Throws<ElfFormatException>(() => LinkMap.ReadList(new ArrayMemory(first, bytes[..50]), first));
    }

    private static MappedObject LinkerOf(ProcMapsSymbolTable symbols) =>
        symbols.MappedObjects.Single(o => o.LoadBias == symbols.Auxv.InterpreterBase);

    /// <summary>An agent over our real r_debug address, with r_debug's bytes replaced by a script (zeroed, as at exec).</summary>
    private static (GlibcRtld Agent, OverlayMemory Script) ScriptedAgent()
    {
        var real = DynamicLinkerState.FindFromExecutable(ProcMemory.Self, Self.Executable!)!.Value;
        var script = new OverlayMemory(ProcMemory.Self, real.Address, new byte[RDebug.Size]);
        var agent = GlibcRtld.Create(script, real.Address, real.BreakAddress, ProcAuxv.Read(Environment.ProcessId).Entry);
        BinaryPrimitives.WriteInt32LittleEndian(script.Overlay, 1);
        BinaryPrimitives.WriteUInt64LittleEndian(script.Overlay.AsSpan(8), real.FirstLinkMap);
        BinaryPrimitives.WriteUInt64LittleEndian(script.Overlay.AsSpan(16), real.BreakAddress);
        return (agent, script);
    }

    private static RtldEventMessage Hit(OverlayMemory script, int state, GlibcRtld agent, ulong? address = null)
    {
        BinaryPrimitives.WriteInt32LittleEndian(script.Overlay.AsSpan(24), state);
        return address is { } at ? agent.ReadEventMessage(at) : agent.ReadEventMessage();
    }
}
