using NSubstitute;
using NSubstitute.ExceptionExtensions;
using ProcHex.Ports;
using ProcHex.Core.Tests.Ports;

namespace ProcHex.Core.Tests;

/// <summary>
/// Issue 17, item 1, in the core: a pending SPEC on a GNU indirect function is planted on the implementation, taken
/// from a bound GOT slot when there is one, else from the resolver called through the port; an unbound slot (pointing
/// into a PLT), a failed call or an implausible answer leave it pending with the reason; a created victim waits.
/// </summary>
[Trait("Issue", "17.1")]
public sealed class IndirectFunctionTests
{
    private const ulong Slot = 0x404018;
    private const ulong Implementation = 0x401800;
    private const ulong PltStub = 0x401026;

    private static readonly IndirectFunction Work = new(
        "work", PortScript.WorkAddress, "victim", new AddressRange(0x400000, 0x402000), [Slot], [new AddressRange(0x401020, 0x401040)]);

    private static async Task<(ProcHexSession Session, ProcessHandle Handle, PortScript Script, List<PendingBreakpointChange> Changes)> Grabbed(ulong slotValue)
    {
        var tracer = new TracerScript();
        var script = new PortScript(4242);
        script.Symbols.FindIndirectFunction("work", PortScript.WorkAddress).Returns(Work);
        ITracedProcess process = new WithGotSlot(script.Process, slotValue);
        tracer.Tracer.GrabAsync(4242, Arg.Any<GrabAccess>(), Arg.Any<CancellationToken>()).Returns(ValueTask.FromResult(process));
        var session = tracer.Session();
        var changes = new List<PendingBreakpointChange>();
        session.PendingBreakpointChanged = changes.Add;
        var handle = await session.GrabAsync(4242);
        return (session, handle, script, changes);
    }

    [Fact]
    public async Task A_bound_GOT_slot_gives_the_implementation_without_calling_the_resolver()
    {
        var (session, handle, script, _) = await Grabbed(Implementation);
        await using var _ = session;

        var breakpoint = await session.SetPendingBreakpointAsync(handle, "work", static _ => { });

        Assert.Equal(PendingBreakpointState.Planted, breakpoint.State);
        Assert.Equal(Implementation, Assert.Single(breakpoint.Sites).Address);
        script.Process.DidNotReceive().CallFunction(Arg.Any<ulong>(), Arg.Any<TimeSpan>());
    }

    [Fact]
    public async Task A_slot_still_pointing_into_the_PLT_does_not_count_the_resolver_is_called()
    {
        var (session, handle, script, _) = await Grabbed(PltStub);
        await using var _ = session;
        script.Process.CallFunction(PortScript.WorkAddress, Arg.Any<TimeSpan>()).Returns(Implementation);

        var breakpoint = await session.SetPendingBreakpointAsync(handle, "work", static _ => { });

        Assert.Equal(Implementation, Assert.Single(breakpoint.Sites).Address);
        Assert.Equal("work", breakpoint.Sites[0].Symbol);
        script.Process.Received(1).CallFunction(PortScript.WorkAddress, Arg.Any<TimeSpan>());

        // The answer is kept: looking it up again (a library change) calls nothing more.
        var again = await session.SetPendingBreakpointAsync(handle, "work", static _ => { });
        Assert.Equal(Implementation, Assert.Single(again.Sites).Address);
        script.Process.Received(1).CallFunction(PortScript.WorkAddress, Arg.Any<TimeSpan>());
    }

    [Fact]
    public async Task A_failed_call_leaves_the_spec_pending_with_the_reason_and_plants_nothing()
    {
        var (session, handle, script, changes) = await Grabbed(0);
        await using var _ = session;
        script.Process.CallFunction(PortScript.WorkAddress, Arg.Any<TimeSpan>()).Throws(new InferiorCallException("the function at 0x401100 faulted with signal 11 at 0x8"));

        var breakpoint = await session.SetPendingBreakpointAsync(handle, "work", static _ => { });

        Assert.Equal(PendingBreakpointState.Pending, breakpoint.State);
        var reason = Assert.Single(changes).Reason;
        Assert.Contains("GNU indirect function (IFUNC)", reason, StringComparison.Ordinal);
        Assert.Contains("faulted with signal 11", reason, StringComparison.Ordinal);
        Assert.Empty(breakpoint.Sites);
        script.Process.DidNotReceive().PlantBreakpoint(PortScript.WorkAddress);
    }

    [Fact]
    public async Task A_resolver_answer_outside_every_loaded_object_is_refused()
    {
        var (session, handle, script, changes) = await Grabbed(0);
        await using var _ = session;
        script.Process.CallFunction(PortScript.WorkAddress, Arg.Any<TimeSpan>()).Returns(0x7fff_0000_0000UL);

        var breakpoint = await session.SetPendingBreakpointAsync(handle, "work", static _ => { });

        Assert.Equal(PendingBreakpointState.Pending, breakpoint.State);
        Assert.Contains("returned 0x7fff00000000, which is not code of any loaded object", Assert.Single(changes).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task At_create_nothing_is_read_or_called_the_spec_waits_for_relocation()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var changes = new List<PendingBreakpointChange>();
        session.PendingBreakpointChanged = changes.Add;
        var handle = await session.CreateAsync("/bin/victim", ["victim"], new CreateOptions { StopAt = Rendezvous.Create });
        var script = tracer.Last;
        script.Symbols.FindIndirectFunction("work", PortScript.WorkAddress).Returns(Work);

        var breakpoint = await session.SetPendingBreakpointAsync(handle, "work", static _ => { });

        Assert.Equal(PendingBreakpointState.Pending, breakpoint.State);
        Assert.Contains("waiting until its objects are relocated", Assert.Single(changes).Reason, StringComparison.Ordinal);
        script.Process.DidNotReceive().CallFunction(Arg.Any<ulong>(), Arg.Any<TimeSpan>());
    }

    /// <summary>The scripted port, with victim memory holding <paramref name="slotValue"/> at <see cref="Slot"/> (NSubstitute cannot fill a Span).</summary>
    private sealed class WithGotSlot(ITracedProcess inner, ulong slotValue) : ITracedProcess
    {
        public int Pid => inner.Pid;

        public GrabAccess Access => inner.Access;

        public ISymbolTable Symbols => inner.Symbols;

        public int ReadMemory(ulong address, Span<byte> destination)
        {
            destination.Clear();
            if (address == Slot && destination.Length == 8)
            {
                BitConverter.TryWriteBytes(destination, slotValue);
                return 8;
            }

            return 0;
        }

        public ulong CallFunction(ulong address, TimeSpan timeout) => inner.CallFunction(address, timeout);

        public void BeginControl() => inner.BeginControl();

        public ValueTask<StopEvent> WaitForStopAsync(CancellationToken cancellationToken) => inner.WaitForStopAsync(cancellationToken);

        public StopEvent? TakeReadyStop() => inner.TakeReadyStop();

        public void Resume() => inner.Resume();

        public void AwaitExternalResume() => inner.AwaitExternalResume();

        public void RequestStop() => inner.RequestStop();

        public X64Registers ReadRegisters(int threadId) => inner.ReadRegisters(threadId);

        public ulong ReadFirstArgument(int threadId) => inner.ReadFirstArgument(threadId);

        public bool TryFindMainFromEntryCode(out ulong address) => inner.TryFindMainFromEntryCode(out address);

        public IReadOnlyList<ThreadSnapshot> ReadThreads() => inner.ReadThreads();

        public BreakpointPatch PlantBreakpoint(ulong address) => inner.PlantBreakpoint(address);

        public void RemoveBreakpoint(BreakpointPatch patch) => inner.RemoveBreakpoint(patch);

        public void StepOverBreakpoint(int threadId, BreakpointPatch patch) => inner.StepOverBreakpoint(threadId, patch);

        public void WriteMemory(ulong address, ReadOnlySpan<byte> source) => inner.WriteMemory(address, source);

        public IRtldAgent? OpenRtldAgent() => inner.OpenRtldAgent();

        public void Release(ReleaseMode mode) => inner.Release(mode);

        public void Dispose() => inner.Dispose();
    }
}
