using ProcHex.Backends.FreeBSD;
using ProcHex.Ports;
using ProcHex.Tests.FreeBSD.FakeKernel;

namespace ProcHex.Tests.FreeBSD;

/// <summary>Drives the adapter the way the core's control loop does, for tests that prove the port contract.</summary>
internal static class AdapterHarness
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    public static CancellationToken Token => new CancellationTokenSource(Timeout).Token;

    public static async Task<FreeBsdProcess> CreateAsync(FakeFreeBsdKernel kernel, string file, params string[] args)
    {
        var tracer = new FreeBsdTracer(kernel);
        var process = await tracer.CreateAsync(new ProcessStartRequest(file, [Path.GetFileName(file), .. args]), Token);
        return (FreeBsdProcess)process;
    }

    public static async Task<FreeBsdProcess> GrabAsync(FakeFreeBsdKernel kernel, int pid, GrabAccess access = GrabAccess.Control) =>
        (FreeBsdProcess)await new FreeBsdTracer(kernel).GrabAsync(pid, access, Token);

    /// <summary>More stops than any scripted program produces: a loop that never ends is a failure, not a hang.</summary>
    public const int MaxStops = 10_000;

    /// <summary>
    /// Runs to exit: every breakpoint stop is counted and stepped over, every other stop resumed; returns the exit
    /// event and the stop reasons seen. The whole run shares one deadline and a stop budget.
    /// </summary>
    public static async Task<(StopEvent Exit, Dictionary<ulong, int> Hits, List<StopReason> Reasons)> RunToExitAsync(
        ITracedProcess process, IReadOnlyDictionary<ulong, BreakpointPatch> patches, bool replantAfterExec = false)
    {
        var hits = new Dictionary<ulong, int>();
        var reasons = new List<StopReason>();
        var planted = new Dictionary<ulong, BreakpointPatch>(patches);
        using var deadline = new CancellationTokenSource(Timeout);
        process.Resume();
        while (true)
        {
            Assert.True(reasons.Count < MaxStops, $"no exit after {MaxStops} stops: {string.Join(",", reasons.TakeLast(8))} ...");
            var stop = await process.WaitForStopAsync(deadline.Token);
            if (stop.Kind != StopKind.Stopped)
            {
                return (stop, hits, reasons);
            }

            reasons.Add(stop.Reason);
            switch (stop.Reason)
            {
                case StopReason.Breakpoint:
                    Assert.Equal(stop.ProgramCounter, process.ReadProgramCounter());
                    hits[stop.ProgramCounter] = hits.GetValueOrDefault(stop.ProgramCounter) + 1;
                    process.StepOverBreakpoint(planted[stop.ProgramCounter]);
                    break;
                case StopReason.ForkStarting:
                    foreach (var patch in planted.Values)
                    {
                        process.RemoveBreakpoint(patch);
                    }

                    break;
                case StopReason.VforkDone:
                    foreach (var address in planted.Keys.ToList())
                    {
                        planted[address] = process.PlantBreakpoint(address);
                    }

                    break;
                case StopReason.ExecDone when replantAfterExec:
                    foreach (var address in planted.Keys.ToList())
                    {
                        planted[address] = process.PlantBreakpoint(address);
                    }

                    break;
            }

            process.Resume();
        }
    }
}
