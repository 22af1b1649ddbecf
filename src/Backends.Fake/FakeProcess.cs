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

    /// <inheritdoc/>
    public int Pid => Victim.Pid;

    /// <inheritdoc/>
    public GrabAccess Access { get; }

    /// <inheritdoc/>
    public ISymbolTable Symbols { get; }

    internal FakeVictim Victim { get; }

    /// <summary>Null for a read-only hold.</summary>
    internal FakeAttachment? Attachment { get; }

    internal bool ReadOnlyReleased { get; set; }

    /// <inheritdoc/>
    public void BeginControl() => _kernel.BeginControl(this);

    /// <inheritdoc/>
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

    /// <inheritdoc/>
    public StopEvent? TakeReadyStop() => _kernel.TakeReadyStop(this);

    /// <inheritdoc/>
    public void Resume() => _kernel.Resume(this);

    /// <inheritdoc/>
    public void AwaitExternalResume() => _kernel.AwaitExternalResume(this);

    /// <inheritdoc/>
    public void RequestStop() => _kernel.RequestStop(this);

    /// <inheritdoc/>

    /// <inheritdoc/>
    public X64Registers ReadRegisters(int threadId) => _kernel.ReadRegisters(this, threadId);

    /// <inheritdoc/>
    public IReadOnlyList<ThreadSnapshot> ReadThreads() => _kernel.ReadThreads(this);

    /// <inheritdoc/>
    public ulong ReadFirstArgument(int threadId) => _kernel.ReadFirstArgument(this, threadId);

    /// <summary>Fake images have no machine code to decode: main is found by its symbol or through <c>__libc_start_main</c>.</summary>
    public bool TryFindMainFromEntryCode(out ulong address)
    {
        address = 0;
        return false;
    }

    /// <inheritdoc/>
    public BreakpointPatch PlantBreakpoint(ulong address) => _kernel.PlantBreakpoint(this, address);

    /// <inheritdoc/>
    public void RemoveBreakpoint(BreakpointPatch patch) => _kernel.RemoveBreakpoint(this, patch);

    /// <inheritdoc/>
    public void StepOverBreakpoint(int threadId, BreakpointPatch patch) => _kernel.StepOverBreakpoint(this, threadId, patch);

    /// <inheritdoc/>
    public int ReadMemory(ulong address, Span<byte> destination) => _kernel.ReadMemory(this, address, destination);

    /// <inheritdoc/>
    public void WriteMemory(ulong address, ReadOnlySpan<byte> source) => _kernel.WriteMemory(this, address, source);

    /// <summary>
    /// Installs fake in-victim counters (issue 18): a 5-byte jump at each entry (<see cref="FakeKernel.CounterJumpLength"/>)
    /// whose count the kernel's execution model increments on every call, without a stop. Refused: an entry outside the
    /// text, a function shorter than the jump, one its image marks <see cref="FakeImageBuilder.Unpatchable"/>, a trap
    /// in the bytes the jump would replace, another counter's jump there.
    /// </summary>
    public IReadOnlyList<CounterPlacement> InstallCounters(IReadOnlyList<CounterSite> sites) => _kernel.InstallCounters(this, sites);

    /// <inheritdoc/>
    public void RemoveCounters(IReadOnlyList<ISharedCounter> counters) => _kernel.RemoveCounters(this, counters);

    /// <inheritdoc/>
    public IRtldAgent? OpenRtldAgent() => _kernel.OpenRtldAgent(this);

    /// <summary>The client's ends of the pipes the create asked for; the core disposes them.</summary>
    public StandardStreams? Streams { get; init; }

    /// <inheritdoc/>
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
