using ProcHex.Ports;
using ProcHex.Backends.Linux.Tests.Support;

namespace ProcHex.Backends.Linux.Tests;

/// <summary>
/// Issue 17, item 1, on real processes: a SPEC naming a GNU indirect function (IFUNC) counts the calls of the
/// implementation its resolver chose, on the machine's own glibc (strlen, memcpy, memset, strcmp) and on a fixture
/// library's own IFUNC (pick, resolved to pick_a or pick_b); found before the program resolved it (SPECs set at create,
/// preinit and main) and after (a process grabbed once it has called them); and the inferior call underneath
/// (registers, stack and text restored; a fault and a function that never returns fail cleanly).
/// </summary>
[Trait("Backend", "Linux")]
[Trait("Issue", "17.1")]
public sealed class IndirectFunctionTests : LinuxTestBase
{
    private const int Calls = 300;
    private static readonly string[] Specs = ["strlen", "memcpy", "memset", "strcmp", "pick"];

    private static ProcHexSession NewSession() => new(new LinuxTracer(TestLog.Factory), new ProcHexOptions(), TestLog.Factory);

    private async Task<ProcessHandle> CreateAt(ProcHexSession session, Rendezvous stopAt, IReadOnlyList<string>? environment, params string[] args)
    {
        var path = FixturePrograms.PathOf("ifunc");
        var handle = await session.CreateAsync(path, [path, .. args], new CreateOptions { StopAt = stopAt, Environment = environment });
        TrackPid(handle.Pid);
        return handle;
    }

    private static async Task<Dictionary<string, PendingBreakpoint>> SetSpecs(ProcHexSession session, ProcessHandle handle)
    {
        var specs = new Dictionary<string, PendingBreakpoint>();
        foreach (var spec in Specs)
        {
            specs[spec] = await session.SetPendingBreakpointAsync(handle, spec, static _ => { });
        }

        return specs;
    }

    [Theory]
    [InlineData(Rendezvous.Create)]
    [InlineData(Rendezvous.Preinit)]
    [InlineData(Rendezvous.Main)]
    public async Task Each_indirect_function_counts_every_call_of_the_implementation_its_resolver_chose(Rendezvous stopAt)
    {
        await using var session = NewSession();
        var handle = await CreateAt(session, stopAt, null, Calls.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var specs = await SetSpecs(session, handle);
        session.Continue(handle);

        var note = await session.WaitForNotificationAsync(TimeSpan.FromSeconds(60));
        Assert.Equal((NotificationKind.Exited, 0), (note!.Kind, note.Exit!.Value.Code));
        foreach (var spec in Specs)
        {
            Assert.True(Calls == specs[spec].Hits, $"{spec}: {specs[spec].Hits} hits, {Calls} calls; planted at {string.Join(", ", specs[spec].EverPlanted)}");
            var site = Assert.Single(specs[spec].EverPlanted);
            Assert.NotNull(site.Implementation);
        }

        Assert.Equal("libifunc.so`pick_a", specs["pick"].EverPlanted[0].Implementation);
    }

    [Theory]
    [InlineData(Rendezvous.Create)]
    [InlineData(Rendezvous.Main)]
    public async Task A_static_executables_indirect_functions_wait_for_main_and_then_count_every_call(Rendezvous stopAt)
    {
        await using var session = NewSession();
        var path = FixturePrograms.PathOf("ifunc-static");
        var handle = await session.CreateAsync(path, [path, "40"], new CreateOptions { StopAt = stopAt });
        TrackPid(handle.Pid);
        var specs = new Dictionary<string, PendingBreakpoint>();
        foreach (var spec in (string[])["strlen", "memset", "own"])
        {
            specs[spec] = await session.SetPendingBreakpointAsync(handle, spec, static _ => { });
        }

        // Before main the IRELATIVE slots are unfilled and cpu_features is zero: no resolver may run yet.
        Assert.All(specs.Values, b => Assert.Equal(stopAt == Rendezvous.Main ? PendingBreakpointState.Planted : PendingBreakpointState.Pending, b.State));
        session.Continue(handle);

        var note = await session.WaitForNotificationAsync(TimeSpan.FromSeconds(30));
        Assert.Equal((NotificationKind.Exited, 0), (note!.Kind, note.Exit!.Value.Code));
        Assert.All(specs, s => Assert.True(s.Value.Hits == 40, $"{s.Key}: {s.Value.Hits} hits"));
        Assert.Equal("ifunc-static`own_impl", Assert.Single(specs["own"].EverPlanted).Implementation);
    }

    [Theory]
    [InlineData(null, "pick_a")]
    [InlineData("b", "pick_b")]
    public async Task A_fixture_librarys_own_indirect_function_is_planted_on_the_implementation_its_resolver_picked(string? choice, string implementation)
    {
        await using var session = NewSession();
        string[] environment = [.. System.Environment.GetEnvironmentVariables().Keys.Cast<string>().Where(k => k != "IFUNC_PICK").Select(k => $"{k}={System.Environment.GetEnvironmentVariable(k)}")];
        var handle = await CreateAt(session, Rendezvous.Main, choice is null ? environment : [.. environment, $"IFUNC_PICK={choice}"], "25");
        var pick = await session.SetPendingBreakpointAsync(handle, "pick", static _ => { });

        var site = Assert.Single(pick.Sites);
        Assert.Equal(handle.LookupSymbol($"libifunc.so`{implementation}"), site.Address);
        Assert.NotEqual(handle.LookupSymbol("libifunc.so`pick"), site.Address);
        Assert.Equal(("libifunc.so", "pick", $"libifunc.so`{implementation}"), (site.ObjectName, site.Symbol, site.Implementation));

        session.Continue(handle);
        var note = await session.WaitForNotificationAsync(TimeSpan.FromSeconds(30));
        Assert.Equal((NotificationKind.Exited, 0), (note!.Kind, note.Exit!.Value.Code));
        Assert.Equal(25, pick.Hits);
    }

    /// <summary>
    /// The one-shot breakpoint API follows the resolver too: <c>SetBreakpointAsync(handle, "strlen")</c> and
    /// <c>"libifunc.so`pick"</c> plant on the implementation and count every call; before the objects are relocated
    /// (a static executable at create: its IRELATIVE slots unfilled) it is a clear error that names the pending API.
    /// </summary>
    [Fact]
    public async Task A_breakpoint_set_on_an_indirect_function_by_name_lands_on_its_implementation_or_says_why_not()
    {
        await using var session = NewSession();
        var path = FixturePrograms.PathOf("ifunc-static");
        var early = await session.CreateAsync(path, [path, "3"], new CreateOptions { StopAt = Rendezvous.Create });
        TrackPid(early.Pid);
        var refused = await Assert.ThrowsAsync<ProcHexException>(() => session.SetBreakpointAsync(early, "own", static _ => { }));
        Assert.Contains("GNU indirect function", refused.Message, StringComparison.Ordinal);
        Assert.Contains("SetPendingBreakpointAsync", refused.Message, StringComparison.Ordinal);
        await session.ReleaseAsync(early);

        var handle = await CreateAt(session, Rendezvous.Main, null, Calls.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var pick = await session.SetBreakpointAsync(handle, "libifunc.so`pick", static _ => { });
        var strlen = await session.SetBreakpointAsync(handle, "strlen", static _ => { });
        Assert.Equal(handle.LookupSymbol("libifunc.so`pick_a"), pick.Address);
        Assert.NotEqual(handle.LookupSymbol("strlen"), strlen.Address);

        session.Continue(handle);
        var note = await session.WaitForNotificationAsync(TimeSpan.FromSeconds(60));
        Assert.Equal((NotificationKind.Exited, 0), (note!.Kind, note.Exit!.Value.Code));
        Assert.Equal((Calls, Calls), (pick.Hits, strlen.Hits));
    }

    [Fact]
    public async Task A_process_grabbed_after_it_resolved_them_counts_exactly_including_one_resolved_by_a_call_from_a_blocked_thread()
    {
        // The victim called strlen, memcpy, memset and pick once (their GOT slots are bound), not strcmp, and blocks in
        // read(): strcmp's resolver is called on a thread stopped inside a system call, which must restart cleanly.
        using var victim = StartWaiting(out var input, out var output);
        await WaitForReady(output);
        await using var session = NewSession();
        var handle = await session.GrabAsync(victim.Id);
        var specs = await SetSpecs(session, handle);
        Assert.All(Specs, s => Assert.Equal(PendingBreakpointState.Planted, specs[s].State));
        session.Continue(handle);

        await File.WriteAllBytesAsync(input, [(byte)'x']);
        var note = await session.WaitForNotificationAsync(TimeSpan.FromSeconds(60));

        Assert.Equal((NotificationKind.Exited, 0), (note!.Kind, note.Exit!.Value.Code));
        Assert.All(Specs, s => Assert.True(Calls == specs[s].Hits, $"{s}: {specs[s].Hits} hits"));
    }

    [Fact]
    public async Task A_bound_GOT_slot_holds_the_implementation_the_resolver_returns()
    {
        using var victim = StartWaiting(out var input, out var output);
        await WaitForReady(output);
        var p = await Grab(victim.Id);
        var resolver = p.Symbols.TryLookup("libifunc.so", "pick", out var r) ? r : throw new InvalidOperationException("no pick");
        var pickA = p.Symbols.TryLookup("libifunc.so", "pick_a", out var a) ? a : throw new InvalidOperationException("no pick_a");

        var function = Assert.IsType<IndirectFunction>(p.Symbols.FindIndirectFunction("pick", resolver));
        var bound = function.Slots.Select(slot => ReadWord(p, slot)).Where(function.IsImplementation).ToList();
        Assert.Equal(pickA, Assert.Single(bound.Distinct()));
        Assert.Equal(pickA, p.CallFunction(resolver, TimeSpan.FromSeconds(5)));
        Assert.Null(p.Symbols.FindIndirectFunction("pick_a", pickA));

        p.Release(ReleaseMode.Run);
        await File.WriteAllBytesAsync(input, [(byte)'x']);
        Assert.True(await Observe.Eventually(() => victim.Ending is not null, 30_000), "the victim did not end");
        Assert.Equal("exited 0", victim.Ending);
    }

    [Fact]
    public async Task An_inferior_call_restores_registers_stack_and_text_exactly_and_a_fault_or_a_hang_fails_cleanly()
    {
        using var victim = StartWaiting(out var input, out var output);
        await WaitForReady(output);
        var p = await Grab(victim.Id);
        var resolver = p.Symbols.TryLookup("libifunc.so", "pick", out var r) ? r : throw new InvalidOperationException("no pick");
        var spin = p.Symbols.TryLookup("libifunc.so", "spin_forever", out var s) ? s : throw new InvalidOperationException("no spin_forever");
        var entry = Observe.AuxvEntry(victim.Id);
        var before = Snapshot(victim.Id, p, entry);

        Assert.NotEqual(0UL, p.CallFunction(resolver, TimeSpan.FromSeconds(5)));
        Assert.Equal(before, Snapshot(victim.Id, p, entry));

        var fault = await Assert.ThrowsAsync<InferiorCallException>(() => Task.Run(() => p.CallFunction(8, TimeSpan.FromSeconds(5))));
        Assert.Contains("faulted with signal 11", fault.Message, StringComparison.Ordinal);
        Assert.Equal(before, Snapshot(victim.Id, p, entry));

        var hang = await Assert.ThrowsAsync<InferiorCallException>(() => Task.Run(() => p.CallFunction(spin, TimeSpan.FromMilliseconds(200))));
        Assert.Contains("did not return within 0.2 s", hang.Message, StringComparison.Ordinal);
        Assert.Equal(before, Snapshot(victim.Id, p, entry));

        // Still itself: the read it was blocked in restarts, takes the byte, and the program runs to its end.
        p.Release(ReleaseMode.Run);
        await File.WriteAllBytesAsync(input, [(byte)'x']);
        Assert.True(await Observe.Eventually(() => victim.Ending is not null, 30_000), "the victim did not end");
        Assert.Equal("exited 0", victim.Ending);
    }

    private Untraced StartWaiting(out string input, out string output)
    {
        var name = Guid.NewGuid().ToString("N");
        input = Path.Combine(FixturePrograms.Dir, $"in-{name}");
        output = Path.Combine(FixturePrograms.Dir, $"out-{name}");
        var victim = Untraced.StartWatchedWithInput("ifunc", input, output, Calls.ToString(System.Globalization.CultureInfo.InvariantCulture), "wait");
        TrackPid(victim.Id);
        return victim;
    }

    /// <summary>The victim's "ready" line: it has called its functions once and blocks reading its input.</summary>
    private static async Task WaitForReady(string output) =>
        Assert.True(await Observe.Eventually(() => File.Exists(output) && File.ReadAllText(output) == "ready\n", 30_000), "the victim never said ready");

    private static ulong ReadWord(ITracedProcess p, ulong address)
    {
        Span<byte> word = stackalloc byte[8];
        Assert.Equal(8, p.ReadMemory(address, word));
        return BitConverter.ToUInt64(word);
    }

    /// <summary>What a call must leave as it was: the stopped thread's registers (from /proc), its stack, and the text at the return trap.</summary>
    private static string Snapshot(int pid, ITracedProcess p, ulong entry)
    {
        var registers = File.ReadAllText($"/proc/{pid}/syscall").Trim();
        var stackPointer = ulong.Parse(registers.Split(' ')[^2][2..], System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
        var stack = new byte[16 * 1024];
        _ = p.ReadMemory(stackPointer - (ulong)stack.Length, stack);
        var text = new byte[16];
        _ = p.ReadMemory(entry, text);
        return $"{registers} stack {Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(stack))} text {Convert.ToHexString(text)}";
    }
}
