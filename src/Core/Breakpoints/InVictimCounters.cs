using ProcHex.Ports;
using ProcHex.Victims;

namespace ProcHex.Breakpoints;

/// <summary>
/// The core's side of in-victim counting (issue 18): which of a counter's sites may count in the victim, asked of the
/// backend in one batch, and taking them out again. Runs with the victim lock held, like all pending-breakpoint work.
/// </summary>
internal static class InVictimCounters
{
    /// <summary>One placement per address: a counter, or why the site counts with a trap.</summary>
    public static CounterPlacement[] Place(Victim victim, PendingBreakpoint breakpoint, ulong[] addresses)
    {
        var placements = new CounterPlacement[addresses.Length];
        var why = breakpoint.Preferred != CountingMode.InVictim ? "counting with traps was asked for"
            : victim.State is not (VictimState.Stopped or VictimState.Idle or VictimState.Grabbed or VictimState.Created or VictimState.Running)
                ? $"the process was {Describe(victim.State)} when {breakpoint.Spec} was found; in-victim counters go in while it runs or is stopped by us"
                : null;
        var sites = new List<CounterSite>(addresses.Length);
        var asked = new List<int>(addresses.Length);
        for (var i = 0; i < addresses.Length; i++)
        {
            var site = new CounterSite(addresses[i], null);
            if (why is not null)
            {
                placements[i] = CounterPlacement.Refused(site, why);
            }
            else if (victim.Process.Symbols.FunctionSize(addresses[i]) is not { } size)
            {
                placements[i] = CounterPlacement.Refused(site, $"0x{addresses[i]:x}: no sized function symbol or unwind-table entry starts there, so its branches cannot all be checked");
            }
            else
            {
                sites.Add(site with { FunctionLength = size });
                asked.Add(i);
            }
        }

        if (sites.Count == 0)
        {
            return placements;
        }

        try
        {
            var placed = victim.Process.InstallCounters(sites);
            if (placed is null || placed.Count != sites.Count)
            {
                throw new TracerException($"the backend answered {placed?.Count ?? 0} placements for {sites.Count} sites", TracerErrorKind.Failed);
            }

            for (var n = 0; n < asked.Count; n++)
            {
                placements[asked[n]] = placed[n];
            }
        }
        catch (TracerException ex)
        {
            Log.OperationFailed(victim.Logger, victim.Pid, $"install counters for {breakpoint.Spec}", ex.Message);
            for (var n = 0; n < asked.Count; n++)
            {
                placements[asked[n]] = CounterPlacement.Refused(sites[n], ex.Message);
            }
        }

        return placements;
    }

    private static string Describe(VictimState state) => state == VictimState.HeldByOthers ? "stopped by someone else" : state.ToString().ToLowerInvariant();

    /// <summary>
    /// Takes the breakpoint's counters out of the text, but for those another SPEC of the victim still counts with (the
    /// backend hands out one counter per entry). The backend writes nothing where the jump is no longer there (an
    /// unloaded object, a replaced image) and nothing after the victim ended. Their counts up to now stay in the
    /// breakpoint's hits, and it counts no more, even where a failed removal left a jump in.
    /// </summary>
    public static void Remove(Victim victim, PendingBreakpoint breakpoint)
    {
        var counters = breakpoint.Counters;
        breakpoint.Counters = [];
        if (counters.Length == 0)
        {
            return;
        }

        var ours = Array.FindAll(counters, c => !victim.PendingBreakpoints.CountsWith(c));
        try
        {
            if (ours.Length > 0 && victim.IsAlive)
            {
                victim.Process.RemoveCounters(ours);
            }
        }
        catch (TracerException ex)
        {
            Log.OperationFailed(victim.Logger, victim.Pid, $"remove the counters of {breakpoint.Spec}", ex.Message);
        }
        finally
        {
            breakpoint.StopCounting(counters);
            victim.Metrics.CountersRetired(ours); // after the removal: a call inside a trampoline meanwhile is counted
        }
    }
}
