using ProcHex.Ports;

namespace ProcHex.Bench;

/// <summary>
/// A tracer whose read-only grabs cost nothing, so the handle-table benchmarks measure the core alone.
/// Only what a read-only handle uses is implemented; anything else is a bug in the benchmark.
/// </summary>
internal sealed class ReadOnlyTracer : IProcessTracer
{
    public string Name => "bench";

    public ValueTask<ITracedProcess> CreateAsync(ProcessStartRequest request, CancellationToken cancellationToken) =>
        throw new NotSupportedException("the handle-table benchmarks only grab read-only");

    public ValueTask<ITracedProcess> GrabAsync(int pid, GrabAccess access, CancellationToken cancellationToken) =>
        ValueTask.FromResult<ITracedProcess>(new Process(pid, access));

    private sealed class Process(int pid, GrabAccess access) : ITracedProcess
    {
        public int Pid => pid;

        public GrabAccess Access => access;

        public ISymbolTable Symbols { get; } = new NoSymbols();

        public void Release(ReleaseMode mode)
        {
        }

        public void Dispose()
        {
        }

        public void BeginControl() => throw Unused();

        public ValueTask<StopEvent> WaitForStopAsync(CancellationToken cancellationToken) => throw Unused();

        public StopEvent? TakeReadyStop() => throw Unused();

        public void Resume() => throw Unused();

        public void AwaitExternalResume() => throw Unused();

        public void RequestStop() => throw Unused();

        public X64Registers ReadRegisters(int threadId) => throw Unused();

        public IReadOnlyList<ThreadSnapshot> ReadThreads() => throw Unused();

        public ulong ReadFirstArgument(int threadId) => throw Unused();

        public bool TryFindMainFromEntryCode(out ulong address) => throw Unused();

        public BreakpointPatch PlantBreakpoint(ulong address) => throw Unused();

        public void RemoveBreakpoint(BreakpointPatch patch) => throw Unused();

        public void StepOverBreakpoint(int threadId, BreakpointPatch patch) => throw Unused();

        public int ReadMemory(ulong address, Span<byte> destination) => throw Unused();

        public void WriteMemory(ulong address, ReadOnlySpan<byte> source) => throw Unused();

        public IRtldAgent? OpenRtldAgent() => throw Unused();

        private static NotSupportedException Unused() => new("not used by a read-only handle");
    }

    private sealed class NoSymbols : ISymbolTable
    {
        public IReadOnlyList<LoadedObject> Objects => [];

        public void Refresh()
        {
        }

        public void Reset()
        {
        }

        public bool TryLookup(string? objectName, string symbol, out ulong address)
        {
            address = 0;
            return false;
        }

        public bool TryResolve(ulong address, out SymbolLocation location)
        {
            location = default;
            return false;
        }
    }
}
