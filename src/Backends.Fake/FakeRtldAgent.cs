using ProcHex.Ports;

namespace ProcHex.Backends.Fake;

/// <summary>The fake linker's debugging interface for one image; it goes stale when the victim execs.</summary>
internal sealed class FakeRtldAgent : IRtldAgent
{
    private readonly FakeKernel _kernel;
    private readonly FakeVictim _victim;
    private readonly int _generation;
    private readonly FakeDynamicLinker _linker;

    public FakeRtldAgent(FakeKernel kernel, FakeVictim victim, int generation, FakeDynamicLinker linker)
    {
        _kernel = kernel;
        _victim = victim;
        _generation = generation;
        _linker = linker;
    }

    public bool EnableEvents() => _linker.ReportsEvents;

    public bool TryGetEventAddress(RtldEventKind kind, out ulong address)
    {
        address = _linker.EventAddress(kind);
        return true;
    }

    public RtldEventMessage ReadEventMessage() => _kernel.ReadEventMessage(_victim, _generation);
}
