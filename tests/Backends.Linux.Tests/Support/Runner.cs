using ProcHex.Ports;

namespace ProcHex.Tests.Support;

/// <summary>
/// Drives a traced process to its end the way the core's control loop does: count breakpoint hits, step over
/// them, take breakpoints out of the text for a vfork and put them back after, re-plant after exec.
/// </summary>
internal sealed class Runner(ITracedProcess process)
{
    private readonly Dictionary<ulong, BreakpointPatch> _planted = [];

    public int Hits { get; private set; }

    public HashSet<int> HitThreads { get; } = [];

    public List<StopReason> Reasons { get; } = [];

    /// <summary>Called after exec with the new image, to plant again.</summary>
    public Action<Runner>? OnExec { get; init; }

    public void Plant(ulong address) => _planted[address] = process.PlantBreakpoint(address);

    public async Task<StopEvent> RunToEnd(int seconds = 60)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        process.Resume();
        while (true)
        {
            var e = await process.WaitForStopAsync(cts.Token);
            if (e.Kind != StopKind.Stopped)
            {
                return e;
            }

            Reasons.Add(e.Reason);
            switch (e.Reason)
            {
                case StopReason.Breakpoint:
                    Assert.True(_planted.TryGetValue(e.ProgramCounter, out var patch), $"hit at unknown 0x{e.ProgramCounter:x}");
                    Hits++;
                    HitThreads.Add(e.ThreadId);
                    process.StepOverBreakpoint(patch);
                    break;
                case StopReason.ForkStarting:
                    foreach (var p in _planted.Values)
                    {
                        process.RemoveBreakpoint(p);
                    }

                    break;
                case StopReason.VforkDone:
                    foreach (var a in _planted.Keys.ToArray())
                    {
                        Plant(a);
                    }

                    break;
                case StopReason.ExecDone:
                    _planted.Clear();
                    OnExec?.Invoke(this);
                    break;
            }

            process.Resume();
        }
    }
}
