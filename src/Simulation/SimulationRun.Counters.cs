using System.Globalization;
using ProcHex.Backends.Fake;

namespace ProcHex.Simulation;

/// <summary>What the client side expects of one counter (issue 18): the calls it must have counted, from the kernel's tally.</summary>
public sealed class CounterModel
{
    internal CounterModel(PendingBreakpoint counter, HandleModel owner, int id)
    {
        Counter = counter;
        Owner = owner;
        Id = id;
    }

    public PendingBreakpoint Counter { get; }

    public HandleModel Owner { get; }

    public int Id { get; }

    /// <summary>Calls the kernel completed at a site while the counter listed it as counting in the victim, in that image.</summary>
    public long InVictimCalls { get; set; }

    /// <summary>Calls completed at a site while the counter listed it as counting with a trap.</summary>
    public long TrapCalls { get; set; }

    /// <summary>The image generation each site was first seen in (a site of an image an exec replaced counts no more).</summary>
    public Dictionary<PlantedSymbol, int> SiteGenerations { get; } = new(ReferenceEqualityComparer.Instance);

    /// <summary>The hits read at the last check: they never go down.</summary>
    public long LastHits { get; set; }

    public string Name => string.Create(CultureInfo.InvariantCulture, $"c{Id}");
}

/// <summary>The counter operations of the workload and the call tallies their invariants compare with.</summary>
public sealed partial class SimulationRun
{
    private readonly List<CounterModel> _counterModels = [];
    private readonly Dictionary<int, (int Generation, IReadOnlyDictionary<ulong, long> Calls)> _tallies = [];

    /// <summary>Every counter the client set.</summary>
    public IReadOnlyList<CounterModel> Counters => _counterModels;

    /// <summary>The processes whose calls are tallied: every one a counter was set on.</summary>
    internal IReadOnlyCollection<int> TalliedPids => _tallies.Keys;

    /// <summary>
    /// The calls completed in <paramref name="pid"/> since the last check, by address (what one kernel step did, at most:
    /// every step is followed by a check), and the image generation they were made in; null once the process is gone.
    /// </summary>
    internal (int Generation, Dictionary<ulong, long> Calls)? TakeNewCalls(int pid)
    {
        if (!Kernel.Exists(pid) || !_tallies.TryGetValue(pid, out var last))
        {
            return null;
        }

        var generation = Kernel.ImageGeneration(pid);
        var now = Kernel.CallsIn(pid);
        var calls = new Dictionary<ulong, long>();
        foreach (var (address, count) in now)
        {
            var before = generation == last.Generation ? last.Calls.GetValueOrDefault(address) : 0;
            if (count != before)
            {
                calls[address] = count - before;
            }
        }

        _tallies[pid] = (generation, now);
        return (generation, calls);
    }

    /// <summary>Starts tallying the calls of <paramref name="pid"/>, before a counter can go in.</summary>
    private void Tally(int pid)
    {
        if (!_tallies.ContainsKey(pid) && Kernel.Exists(pid))
        {
            _tallies[pid] = (Kernel.ImageGeneration(pid), Kernel.CallsIn(pid));
        }
    }

    private async Task SetCounterAsync(string who)
    {
        if (PickModel(m => m.References > 0) is not { } model)
        {
            return;
        }

        var handle = model.Handle;
        var spec = s_breakpointSpecs[Random.Next(s_breakpointSpecs.Length)];
        var preferred = Random.Next(4) == 0 ? CountingMode.Trap : CountingMode.InVictim;
        Trace.Add($"{who} counter {model.Name} {spec} {preferred} ({handle.State})");
        Tally(handle.Pid);
        try
        {
            var counter = await Session.SetPendingCounterAsync(handle, spec, preferred);
            var counted = Modelled(counter);
            var sites = string.Join(", ", counter.Sites.Select(s => string.Create(CultureInfo.InvariantCulture, $"0x{s.Address:x} {s.Counting}{(s.Fallback is { } why ? $" ({why})" : string.Empty)}")));
            Trace.Add($"{who} counter {counted.Name} set on {model.Name} {spec}: {counter.State} {sites}");
        }
        catch (ProcHexException ex) when (ex.GetType() == typeof(ProcHexException))
        {
            // Read-only or monitor-less handles and dead victims refuse breakpoints, counters included.
            Trace.Add($"{who} counter refused: {ex.Message}");
        }
        catch (InvalidHandleException ex) when (handle.State is VictimState.Releasing or VictimState.Released || !handle.Victim.Registered)
        {
            Trace.Add($"{who} counter refused: {ex.Message}");
        }
        catch (Exception ex) when (ex is not InvariantViolationException)
        {
            throw Unexpected(who, "set counter", ex);
        }
    }

    /// <summary>
    /// A counter is modelled from the moment the session tells of it (planted or pending, inside the call that set it):
    /// calls made after its placement and before the call returned are its own.
    /// </summary>
    private void OnPendingBreakpointChanged(PendingBreakpointChange change)
    {
        if (change.Breakpoint.Preferred is not null)
        {
            var model = Modelled(change.Breakpoint);
            Trace.Add($"counter {model.Name} {change.Kind} {change.Reason ?? string.Empty}".TrimEnd());
        }
    }

    private CounterModel Modelled(PendingBreakpoint counter)
    {
        if (_counterModels.Find(c => ReferenceEquals(c.Counter, counter)) is not { } model)
        {
            model = new CounterModel(counter, ModelOf(counter.Handle), _counterModels.Count + 1);
            _counterModels.Add(model);
        }

        return model;
    }

    private async Task RemoveCounterAsync(string who)
    {
        var candidates = _counterModels.Where(c => c.Counter.State != PendingBreakpointState.Removed).ToList();
        if (candidates.Count == 0)
        {
            return;
        }

        var model = candidates[Random.Next(candidates.Count)];
        var handle = model.Owner.Handle;
        var inVictim = model.Counter.Sites.Where(s => s.Counting == CountingMode.InVictim).Select(s => s.Address).ToList();
        var faultsBefore = RemoveFaults();
        Trace.Add($"{who} remove counter {model.Name} of {model.Owner.Name} ({handle.State}, {model.Counter.Hits} hits)");
        if (handle.State == VictimState.Released)
        {
            await ExpectInvalidHandleAsync(who, "remove counter", () => Session.RemovePendingBreakpointAsync(model.Counter));
            return;
        }

        try
        {
            await Session.RemovePendingBreakpointAsync(model.Counter);
        }
        catch (InvalidHandleException ex) when (handle.State is VictimState.Releasing or VictimState.Released)
        {
            Trace.Add($"{who} remove counter refused: {ex.Message}");
            return;
        }
        catch (Exception ex) when (ex is not InvariantViolationException)
        {
            throw Unexpected(who, "remove counter", ex);
        }

        if (model.Counter.State != PendingBreakpointState.Removed)
        {
            throw new InvariantViolationException($"{model.Name} is {model.Counter.State} after its removal");
        }

        CheckTextAfterRemoval(model, inVictim, RemoveFaults() != faultsBefore);
    }

    /// <summary>
    /// Issue 18: once a counter is removed, the entries it counted in the victim hold their original bytes again, unless
    /// the removal failed (an injected fault: the core logs it and goes on, the jump stays until release) or another
    /// counter of the process still lists the address.
    /// </summary>
    private void CheckTextAfterRemoval(CounterModel model, List<ulong> inVictim, bool removalFailed)
    {
        var pid = model.Owner.Handle.Pid;
        if (removalFailed || !Kernel.Exists(pid) || Kernel.Observe(pid).Zombie || !model.Owner.Handle.Victim.IsAlive)
        {
            return;
        }

        var differences = Kernel.TextDifferences(pid);
        foreach (var entry in inVictim)
        {
            var shared = _counterModels.Exists(c => c != model && c.Owner.Handle.Pid == pid && c.Counter.Sites.Any(s => s.Address == entry));
            var end = entry + FakeKernel.CounterJumpLength;
            if (!shared && differences.FirstOrDefault(d => d >= entry && d < end) is var differs && differs != 0)
            {
                throw new InvariantViolationException(string.Create(CultureInfo.InvariantCulture, $"{model.Name} was removed, but pid {pid}'s text differs from the original at 0x{differs:x} (its entry 0x{entry:x})"));
            }
        }
    }

    private int RemoveFaults() => Kernel.Log.Count(line => line.Contains("fault RemoveCounters", StringComparison.Ordinal));
}
