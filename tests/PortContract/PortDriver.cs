using ProcHex.Ports;

namespace ProcHex.PortContract;

/// <summary>
/// Drives a traced process to its end the way the core's control loop answers its stops (ControlLoop): a breakpoint
/// is counted and stepped over, traps come out of the text when a fork starts and go back when it is done, an exec
/// forgets every patch, someone else's stop is waited out. The one run-to-end driver of every adapter's tests.
/// </summary>
/// <param name="process">The process, controlled (<see cref="ITracedProcess.BeginControl"/> called) and stopped.</param>
public sealed class PortDriver(ITracedProcess process)
{
    private readonly Dictionary<ulong, BreakpointPatch> _planted = [];
    private readonly HashSet<ulong> _removedForFork = [];
    private readonly Dictionary<ulong, int> _hitsAt = [];

    /// <summary>More stops than any test program produces: a run that never ends is a failure, not a hang.</summary>
    public int MaxStops { get; init; } = 100_000;

    /// <summary>
    /// How the next stop is awaited: the process's own wait by default; a fake kernel stepped by hand passes its
    /// stepping wait.
    /// </summary>
    public Func<ITracedProcess, CancellationToken, ValueTask<StopEvent>> Wait { get; init; } = static (p, token) => p.WaitForStopAsync(token);

    /// <summary>
    /// Leaves the traps planted across a fork instead of taking them out as the core does, so a test proves the
    /// adapter itself hands the child clean text.
    /// </summary>
    public bool KeepTrapsAcrossFork { get; init; }

    /// <summary>Called after an exec, once the old image's patches are forgotten, to plant in the new image.</summary>
    public Action<PortDriver>? OnExec { get; init; }

    /// <summary>Called at each hit, before the step over; removing the hit trap here makes the driver just resume.</summary>
    public Action<PortDriver, StopEvent>? OnBreakpoint { get; init; }

    /// <summary>The process driven.</summary>
    public ITracedProcess Process => process;

    /// <summary>Hits counted, all addresses together.</summary>
    public int Hits { get; private set; }

    /// <summary>Hits counted per trap address.</summary>
    public IReadOnlyDictionary<ulong, int> HitsAt => _hitsAt;

    /// <summary>The threads that reported a hit.</summary>
    public HashSet<int> HitThreads { get; } = [];

    /// <summary>Hits reported at an address where no trap is planted (any more): see <see cref="OnHit"/>.</summary>
    public List<StopEvent> StaleHits { get; } = [];

    /// <summary>The reason of every stop, in order.</summary>
    public List<StopReason> Reasons { get; } = [];

    /// <summary>Every event the waits returned, the last one (an exit or a loss) included.</summary>
    public List<StopEvent> Events { get; } = [];

    /// <summary>The traps planted now, by address.</summary>
    public IReadOnlyDictionary<ulong, BreakpointPatch> Planted => _planted;

    /// <summary>Plants a trap at <paramref name="address"/> (again, after an exec).</summary>
    public void Plant(ulong address) => _planted[address] = process.PlantBreakpoint(address);

    /// <summary>Takes over a trap planted before the driver existed.</summary>
    public void Adopt(BreakpointPatch patch) => _planted[patch.Address] = patch;

    /// <summary>Puts back the bytes under the trap at <paramref name="address"/>.</summary>
    public void Remove(ulong address)
    {
        if (_planted.Remove(address, out var patch))
        {
            process.RemoveBreakpoint(patch);
        }
    }

    /// <summary>
    /// Resumes the process (unless <paramref name="running"/> says it already runs) and answers its stops until it
    /// exits or is lost; returns that last event.
    /// </summary>
    public async Task<StopEvent> RunToEnd(int seconds = 60, bool running = false)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        if (!running)
        {
            process.Resume();
        }

        while (true)
        {
            Assert.True(Reasons.Count < MaxStops, $"no end after {MaxStops} stops: {string.Join(",", Reasons.TakeLast(8))} ...");
            var stop = await Wait(process, deadline.Token);
            Events.Add(stop);
            if (stop.Kind != StopKind.Stopped)
            {
                return stop;
            }

            Reasons.Add(stop.Reason);
            if (Answer(stop))
            {
                process.Resume();
            }
        }
    }

    /// <summary>Answers one stop as the core would; false when the process must stay stopped (held by others).</summary>
    private bool Answer(StopEvent stop)
    {
        switch (stop.Reason)
        {
            case StopReason.Breakpoint:
                OnHit(stop);
                break;
            case StopReason.ForkStarting when !KeepTrapsAcrossFork:
                foreach (var address in _planted.Keys.ToList())
                {
                    Remove(address);
                    _removedForFork.Add(address);
                }

                break;
            case StopReason.ForkDone or StopReason.VforkDone:
                foreach (var address in _removedForFork)
                {
                    Plant(address);
                }

                _removedForFork.Clear();
                break;
            case StopReason.ExecDone:
                _planted.Clear();
                _removedForFork.Clear();
                OnExec?.Invoke(this);
                break;
            case StopReason.StoppedByOthers:
                process.AwaitExternalResume();
                return false;
        }

        return true;
    }

    private void OnHit(StopEvent stop)
    {
        if (!_planted.ContainsKey(stop.ProgramCounter))
        {
            // Taken before the trap was removed, reported after: the PC is rewound, so resuming runs the original
            // instruction; the core logs it as spurious and resumes, as here.
            StaleHits.Add(stop);
            return;
        }

        Hits++;
        _hitsAt[stop.ProgramCounter] = _hitsAt.GetValueOrDefault(stop.ProgramCounter) + 1;
        HitThreads.Add(stop.ThreadId);
        OnBreakpoint?.Invoke(this, stop);
        if (_planted.TryGetValue(stop.ProgramCounter, out var patch))
        {
            process.StepOverBreakpoint(stop.ThreadId, patch);
        }
    }
}
