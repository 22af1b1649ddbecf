using System.Globalization;

namespace ProcHex.Simulation;

/// <summary>
/// Issue 18 item 5: every counter's hits against the kernel's tally of calls. A call completed at a site while the
/// counter listed it as counting in the victim, in the image it was found in, with its handle in control, must be in
/// the hits exactly once; nothing else may be. Sites that count with a trap are held to a floor only: a trap's hit is
/// counted when the core answers the stop, its call completes after the step, and a stop can be cut short (a kill, a
/// release), so their exact count is the breakpoint machinery's, checked elsewhere.
/// </summary>
internal static class CounterInvariants
{
    /// <summary>After every kernel step and client operation, and once after teardown.</summary>
    public static string? Check(SimulationRun run)
    {
        foreach (var pid in run.TalliedPids.ToList())
        {
            var calls = run.TakeNewCalls(pid);
            var controlled = run.Kernel.Exists(pid) && run.Kernel.Observe(pid).Traced;
            foreach (var model in run.Counters.Where(c => c.Owner.Handle.Pid == pid))
            {
                Attribute(model, calls, controlled);
                if (Verify(model) is { } violation)
                {
                    return violation;
                }
            }
        }

        return null;
    }

    private static void Attribute(CounterModel model, (int Generation, Dictionary<ulong, long> Calls)? calls, bool controlled)
    {
        var counter = model.Counter;
        var inControl = controlled && model.Owner.Handle.State is not (VictimState.Released or VictimState.Lost); // a loss freezes the counts
        foreach (var site in counter.Sites)
        {
            if (calls is not { } tally)
            {
                continue;
            }

            if (!model.SiteGenerations.TryGetValue(site, out var generation))
            {
                model.SiteGenerations[site] = generation = tally.Generation;
            }

            var made = tally.Calls.GetValueOrDefault(site.Address);
            if (made == 0 || generation != tally.Generation || !inControl || counter.State != PendingBreakpointState.Planted)
            {
                continue;
            }

            if (site.Counting == CountingMode.InVictim)
            {
                model.InVictimCalls += made;
            }
            else
            {
                model.TrapCalls += made;
            }
        }
    }

    private static string? Verify(CounterModel model)
    {
        var hits = model.Counter.Hits;
        var everTrap = model.Counter.EverPlanted.Any(s => s.Counting != CountingMode.InVictim);
        string? violation = null;
        if (hits < model.LastHits)
        {
            violation = $"its hits went down from {model.LastHits} to {hits}";
        }
        else if (!everTrap && hits != model.InVictimCalls)
        {
            violation = $"it counted {hits} calls in the victim, the kernel completed {model.InVictimCalls} there while it counted";
        }
        else if (everTrap && hits < model.InVictimCalls)
        {
            violation = $"it has {hits} hits, fewer than the {model.InVictimCalls} calls completed where it counted in the victim";
        }

        model.LastHits = hits;
        return violation is null
            ? null
            : string.Create(CultureInfo.InvariantCulture, $"counter {model.Name} ({model.Counter.Spec} on {model.Owner.Name}, pid {model.Owner.Handle.Pid}, {model.Counter.State}): {violation}");
    }
}
