using ProcHex.PortContract;
using ProcHex.Ports;
using ProcHex.Backends.FreeBSD.Tests.FakeKernel;

namespace ProcHex.Backends.FreeBSD.Tests;

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

    /// <summary>
    /// Runs to exit with the shared <see cref="PortDriver"/> (every breakpoint stop counted and stepped over, traps
    /// out for a fork, back after it): returns the exit event, the hits per address and the stop reasons seen.
    /// </summary>
    public static async Task<(StopEvent Exit, IReadOnlyDictionary<ulong, int> Hits, List<StopReason> Reasons)> RunToExitAsync(
        ITracedProcess process, IReadOnlyDictionary<ulong, BreakpointPatch> patches, bool replantAfterExec = false)
    {
        var addresses = patches.Keys.ToList();
        var driver = new PortDriver(process)
        {
            MaxStops = 10_000,
            OnExec = replantAfterExec ? d => addresses.ForEach(d.Plant) : null,
        };
        foreach (var address in addresses)
        {
            driver.Adopt(patches[address]);
        }

        var exit = await driver.RunToEnd((int)Timeout.TotalSeconds);
        return (exit, driver.HitsAt, driver.Reasons);
    }
}
