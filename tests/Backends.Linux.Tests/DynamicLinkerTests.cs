using ProcHex.Ports;
using ProcHex.Backends.Linux.Tests.Support;

namespace ProcHex.Backends.Linux.Tests;

/// <summary>
/// Issue 4 on real processes: the rendezvous each proven by what is and is not yet observable, the pid-provider
/// use of dlactivity, PIE / non-PIE / static executables, and lookups that miss.
/// </summary>
[Trait("Backend", "Linux")]
public sealed class DynamicLinkerTests : LinuxTestBase
{
    private static ProcHexSession NewSession() => new(new LinuxTracer(TestLog.Factory), new ProcHexOptions(), TestLog.Factory);

    private async Task<ProcessHandle> CreateAt(ProcHexSession session, string program, Rendezvous stopAt, params string[] args)
    {
        var path = FixturePrograms.PathOf(program);
        var handle = await session.CreateAsync(path, [path, .. args], new CreateOptions { StopAt = stopAt });
        TrackPid(handle.Pid);
        return handle;
    }

    private static long Read(ProcessHandle handle, string objectSymbol)
    {
        Span<byte> buffer = stackalloc byte[8];
        Assert.Equal(8, handle.ReadMemory(handle.LookupSymbol(objectSymbol), buffer));
        return BitConverter.ToInt64(buffer);
    }

    private static bool Maps(ProcessHandle handle, string name) => handle.Objects.Any(o => o.Name == name);

    private static bool Resolves(ProcessHandle handle, string objectSymbol)
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

    [Theory]
    [InlineData(Rendezvous.Create)]
    [InlineData(Rendezvous.Preinit)]
    [InlineData(Rendezvous.Postinit)]
    [InlineData(Rendezvous.Main)]
    [Trait("Spec", "S1")]
    [Trait("Spec", "S10")]
    [Trait("Spec", "S17")]
    [Trait("Spec", "S18")]
    public async Task Each_rendezvous_is_proven_by_what_has_and_has_not_happened_yet(Rendezvous stopAt)
    {
        await using var session = NewSession();
        var milestones = new List<MilestoneKind>();
        session.MilestoneReached = m => milestones.Add(m.Kind);
        var handle = await CreateAt(session, "rendezvous", stopAt, "7");
        Assert.Equal(VictimState.Idle, handle.State);
        Assert.Equal(stopAt, handle.Rendezvous);
        Assert.Equal('t', Observe.State(handle.Pid));
        var pc = Observe.ProgramCounter(handle.Pid);

        switch (stopAt)
        {
            case Rendezvous.Create:
                // Before the first instruction: only the executable, the dynamic linker and the vDSO are mapped.
                Assert.Equal(Observe.InterpreterEntry(handle.Pid), pc);
                Assert.False(Maps(handle, "libinitmark.so"));
                Assert.False(Maps(handle, "libc.so.6"));
                Assert.False(Resolves(handle, "libc.so.6`malloc"));
                Assert.Equal(0, Read(handle, "a.out`exe_ctor_ran"));
                Assert.Empty(milestones);
                break;
            case Rendezvous.Preinit:
                // The initial libraries are mapped and listed, but none of their initializers has run.
                Assert.True(Maps(handle, "libinitmark.so"));
                Assert.True(Resolves(handle, "libc.so.6`malloc"));
                Assert.Equal(0, Read(handle, "libinitmark.so`lib_ctor_ran"));
                Assert.Equal(0, Read(handle, "a.out`exe_ctor_ran"));
                Assert.Equal(handle.LookupSymbol("_dl_debug_state"), pc);
                Assert.Equal([MilestoneKind.Preinit], milestones);
                break;
            case Rendezvous.Postinit:
                // At the entry point: the libraries' initializers have run; the executable's own (run from
                // __libc_start_main) and main have not.
                Assert.Equal(1, Read(handle, "libinitmark.so`lib_ctor_ran"));
                Assert.Equal(0, Read(handle, "a.out`exe_ctor_ran"));
                Assert.Equal(0, Read(handle, "a.out`main_ran"));
                Assert.Equal(Observe.AuxvEntry(handle.Pid), pc);
                Assert.Equal([MilestoneKind.Preinit, MilestoneKind.Postinit], milestones);
                break;
            case Rendezvous.Main:
                // At main's first instruction: every constructor has run (the executable's saw the library's
                // mark), main's body has not.
                Assert.Equal(1, Read(handle, "a.out`exe_ctor_ran"));
                Assert.Equal(1, Read(handle, "a.out`lib_ctor_seen"));
                Assert.Equal(0, Read(handle, "a.out`main_ran"));
                Assert.Equal(0, Read(handle, "a.out`calls"));
                Assert.Equal(handle.LookupSymbol("a.out`main"), pc);
                Assert.Equal([MilestoneKind.Preinit, MilestoneKind.Postinit, MilestoneKind.Main], milestones);
                break;
        }

        var hits = 0;
        await session.SetBreakpointAsync(handle, "a.out`work", _ => hits++);
        session.Continue(handle);
        var note = await session.WaitForNotificationAsync(TimeSpan.FromSeconds(30));
        Assert.Equal((NotificationKind.Exited, 0), (note!.Kind, note.Exit!.Value.Code));
        Assert.Equal(7, hits);
    }

    [Fact]
    [Trait("Spec", "S17")]
    public async Task A_breakpoint_planted_from_the_dlactivity_callback_counts_every_call_and_dlclose_is_reported()
    {
        await using var session = NewSession();
        var hits = 0;
        var events = new List<string>();
        var planting = new List<Task>();
        session.LibraryListChanged = change =>
        {
            foreach (var added in change.Added.Where(o => o.Name == "libwork.so"))
            {
                events.Add($"{change.Event}: added {added.Name}");
                planting.Add(session.SetBreakpointAsync(change.Handle, $"{added.Name}`libwork", _ => hits++));
            }

            foreach (var removed in change.Removed.Where(o => o.Name == "libwork.so"))
            {
                events.Add($"{change.Event}: removed {removed.Name}");
            }
        };
        var handle = await CreateAt(session, "dlopen", Rendezvous.Main, "11");
        Assert.False(Maps(handle, "libwork.so"));
        session.Continue(handle);

        var note = await session.WaitForNotificationAsync(TimeSpan.FromSeconds(30));
        await Task.WhenAll(planting);

        Assert.Equal((NotificationKind.Exited, 0), (note!.Kind, note.Exit!.Value.Code));
        Assert.Equal(["DlActivity: added libwork.so", "DlActivity: removed libwork.so"], events);
        Assert.Equal(11, hits);
    }

    [Fact]
    [Trait("Spec", "S12")]
    [Trait("Spec", "S14")]
    public async Task A_non_PIE_executable_is_at_its_link_addresses_and_its_hits_are_counted()
    {
        await using var session = NewSession();
        var handle = await CreateAt(session, "loop-nopie", Rendezvous.Main, "9");
        Assert.Equal(0ul, handle.Objects[0].BaseAddress);
        Assert.Equal(FixturePrograms.Symbol("loop-nopie", "work"), handle.LookupSymbol("a.out`work"));
        Assert.Equal("a.out`work", handle.ResolveAddress(FixturePrograms.Symbol("loop-nopie", "work"))?.ToString().Replace("loop-nopie", "a.out", StringComparison.Ordinal));

        var hits = 0;
        await session.SetBreakpointAsync(handle, "a.out`work", _ => hits++);
        session.Continue(handle);
        var note = await session.WaitForNotificationAsync(TimeSpan.FromSeconds(30));
        Assert.Equal((NotificationKind.Exited, 0), (note!.Kind, note.Exit!.Value.Code));
        Assert.Equal(9, hits);
    }

    [Fact]
    [Trait("Spec", "S12")]
    [Trait("Spec", "S18")]
    public async Task A_static_executable_has_no_rtld_yet_reaches_main_even_when_preinit_was_asked()
    {
        var p = await Create("loop-static", "1");
        Assert.Null(p.OpenRtldAgent());
        p.Release(ReleaseMode.Kill);

        await using var session = NewSession();
        var milestones = new List<MilestoneKind>();
        session.MilestoneReached = m => milestones.Add(m.Kind);
        var handle = await CreateAt(session, "loop-static", Rendezvous.Preinit, "5");
        Assert.Equal(VictimState.Idle, handle.State);
        Assert.Equal(Rendezvous.Main, handle.Rendezvous);
        Assert.Equal(handle.LookupSymbol("a.out`main"), Observe.ProgramCounter(handle.Pid));
        Assert.Equal([MilestoneKind.Main], milestones);
        Assert.Equal(0, Read(handle, "a.out`calls"));
        Assert.DoesNotContain(handle.Objects, o => o.Name.StartsWith("ld-linux", StringComparison.Ordinal));

        var hits = 0;
        await session.SetBreakpointAsync(handle, "a.out`work", _ => hits++);
        session.Continue(handle);
        var note = await session.WaitForNotificationAsync(TimeSpan.FromSeconds(30));
        Assert.Equal((NotificationKind.Exited, 0), (note!.Kind, note.Exit!.Value.Code));
        Assert.Equal(5, hits);
    }

    [Fact]
    [Trait("Spec", "S12")]
    public async Task Lookups_that_miss_say_what_is_missing()
    {
        await using var session = NewSession();
        var handle = await CreateAt(session, "loop", Rendezvous.Main, "1");

        var noSymbol = Assert.Throws<SymbolNotFoundException>(() => handle.LookupSymbol("a.out`no_such_function"));
        var noObject = Assert.Throws<SymbolNotFoundException>(() => handle.LookupSymbol("libnosuch.so.1`malloc"));
        var bare = Assert.Throws<SymbolNotFoundException>(() => handle.LookupSymbol("no_such_function_anywhere"));
        var failure = await Assert.ThrowsAnyAsync<ProcHexException>(() => session.SetBreakpointAsync(handle, "libc.so.6`no_such_function", _ => { }));

        var pid = handle.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal($"pid {pid}: a.out has no symbol 'no_such_function'", noSymbol.Message);
        Assert.Equal($"pid {pid}: no object named 'libnosuch.so.1' is loaded", noObject.Message);
        Assert.Equal($"pid {pid}: no object defines symbol 'no_such_function_anywhere'", bare.Message);
        Assert.Equal($"pid {pid}: libc.so.6 has no symbol 'no_such_function'", failure.Message);
        Assert.Null(handle.ResolveAddress(0x10));
        session.Continue(handle);
        Assert.Equal(NotificationKind.Exited, (await session.WaitForNotificationAsync(TimeSpan.FromSeconds(30)))!.Kind);
    }
}
