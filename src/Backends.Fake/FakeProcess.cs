using ProcHex.Ports;

namespace ProcHex.Backends.Fake;

/// <summary>One hold on a fake victim, as the core sees it. Every call goes through the kernel's lock.</summary>
public sealed class FakeProcess : ITracedProcess
{
    private readonly FakeKernel _kernel;
    private bool _disposed;

    internal FakeProcess(FakeKernel kernel, FakeVictim victim, FakeAttachment? attachment, GrabAccess access)
    {
        _kernel = kernel;
        Victim = victim;
        Attachment = attachment;
        Access = access;
        Symbols = new FakeSymbolTable(kernel, victim, [.. victim.Mappings]);
    }

    public int Pid => Victim.Pid;

    public GrabAccess Access { get; }

    public ISymbolTable Symbols { get; }

    internal FakeVictim Victim { get; }

    /// <summary>Null for a read-only hold.</summary>
    internal FakeAttachment? Attachment { get; }

    internal bool ReadOnlyReleased { get; set; }

    public void BeginControl() => _kernel.BeginControl(this);

    public ValueTask<StopEvent> WaitForStopAsync(CancellationToken cancellationToken)
    {
        try
        {
            return _kernel.WaitForStop(this, cancellationToken);
        }
        catch (Exception e) when (e is TracerException or InvalidOperationException)
        {
            return ValueTask.FromException<StopEvent>(e);
        }
    }

    public StopEvent? TakeReadyStop() => _kernel.TakeReadyStop(this);

    public void Resume() => _kernel.Resume(this);

    public void AwaitExternalResume() => _kernel.AwaitExternalResume(this);

    public void RequestStop() => _kernel.RequestStop(this);

    public ulong ReadProgramCounter() => _kernel.ReadProgramCounter(this);

    public X64Registers ReadRegisters(int threadId) => _kernel.ReadRegisters(this, threadId);

    public IReadOnlyList<ThreadSnapshot> ReadThreads() => _kernel.ReadThreads(this);

    public ulong ReadFirstArgument() => _kernel.ReadFirstArgument(this);

    /// <summary>Fake images have no machine code to decode: main is found by its symbol or through <c>__libc_start_main</c>.</summary>
    public bool TryFindMainFromEntryCode(out ulong address)
    {
        address = 0;
        return false;
    }

    public BreakpointPatch PlantBreakpoint(ulong address) => _kernel.PlantBreakpoint(this, address);

    public void RemoveBreakpoint(BreakpointPatch patch) => _kernel.RemoveBreakpoint(this, patch);

    public void StepOverBreakpoint(BreakpointPatch patch) => _kernel.StepOverBreakpoint(this, patch);

    public int ReadMemory(ulong address, Span<byte> destination) => _kernel.ReadMemory(this, address, destination);

    public void WriteMemory(ulong address, ReadOnlySpan<byte> source) => _kernel.WriteMemory(this, address, source);

    public IRtldAgent? OpenRtldAgent() => _kernel.OpenRtldAgent(this);

    public void Release(ReleaseMode mode) => _kernel.Release(this, mode);

    /// <summary>Without a prior <see cref="Release"/> this is the tracer closing its hold: the last-close rules apply.</summary>
    public void Dispose()
    {
        if (!_disposed)
        {
            _disposed = true;
            _kernel.Close(this);
        }
    }

    /// <inheritdoc/>
    public override string ToString() => $"fake pid {Pid} ({Access})";
}
