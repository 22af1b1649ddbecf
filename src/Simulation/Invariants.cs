using System.Globalization;
using ProcHex.Backends.Fake;
using ProcHex.Victims;

namespace ProcHex.Simulation;

/// <summary>
/// The invariants of issue 2 item 6, checked against the session's internals, the fake kernel and the client
/// model. Each check returns the first violation as text, or null.
/// </summary>
public static class Invariants
{
    /// <summary>After every kernel step and every client operation.</summary>
    public static string? CheckStep(SimulationRun run)
    {
        ArgumentNullException.ThrowIfNull(run);
        var table = run.Session.Table;
        List<(Victim Victim, int References, bool Cacheable)> registered;
        int idleCached;
        lock (table.Gate)
        {
            registered = [.. table.MostRecentFirst.Select(v => (v, v.References, v.Cacheable))];
            idleCached = table.IdleCachedCount;
        }

        return CheckReferences(run, registered, idleCached, table.LruLimit) ?? CheckIdleText(run, registered) ?? CounterInvariants.Check(run);
    }

    /// <summary>After teardown, outside the scheduler: what the session leaves behind in the world.</summary>
    public static string? CheckFinal(SimulationRun run)
    {
        ArgumentNullException.ThrowIfNull(run);
        var kernel = run.Kernel;
        if (run.Session.Handles.Count != 0)
        {
            return $"{run.Session.Handles.Count} handle(s) still held after teardown";
        }

        if (run.Session.PendingNotifications != 0)
        {
            return $"{run.Session.PendingNotifications} notification(s) left after teardown";
        }

        foreach (var model in run.Models)
        {
            var victim = model.Handle.Victim;
            if (model.Handle.State != VictimState.Released)
            {
                return $"{model.Name} (pid {model.Handle.Pid}) is {model.Handle.State} after teardown, not Released";
            }

            if (victim.ControlLoop is { IsCompleted: false })
            {
                return $"{model.Name} (pid {model.Handle.Pid}): its control loop is still waiting after teardown";
            }
        }

        if (CounterInvariants.Check(run) is { } counted)
        {
            return counted;
        }

        var log = kernel.Log;
        var stoppedByOthers = ExternallyStopped(log);

        // S16: the text of a victim the kernel took out of the tracer's reach (an unobservable exec) is not the core's
        // to restore. A loss that is only a failed wait leaves it in reach: that victim is checked like any other.
        var lost = ControlLostByKernel(log);
        foreach (var line in log)
        {
            if (line.Contains("untraced", StringComparison.Ordinal) && !(TryPid(line, out var hit) && lost.Contains(hit)))
            {
                return $"a breakpoint was left behind: {line}";
            }
        }

        foreach (var pid in kernel.Pids)
        {
            var seen = kernel.Observe(pid);
            if (seen.Zombie)
            {
                continue;
            }

            if (seen.Traced)
            {
                return string.Create(CultureInfo.InvariantCulture, $"pid {pid} is still traced after teardown");
            }

            if (!lost.Contains(pid) && kernel.TextDifferences(pid) is { Count: > 0 } differences)
            {
                return string.Create(CultureInfo.InvariantCulture, $"pid {pid}: text differs from the original at 0x{differences[0]:x} after teardown");
            }

            var expected = stoppedByOthers.Contains(pid);
            if (seen.Stopped != expected)
            {
                return expected
                    ? string.Create(CultureInfo.InvariantCulture, $"pid {pid} was stopped by others but runs after teardown")
                    : string.Create(CultureInfo.InvariantCulture, $"pid {pid} is left stopped after teardown, though nobody else stopped it");
            }

            // S9: a created victim is killed, unless someone else held it stopped when it was destroyed (hang).
            if (run.CreatedPids.Contains(pid) && !log.Contains(string.Create(CultureInfo.InvariantCulture, $"pid {pid}: released (Hang)")))
            {
                return string.Create(CultureInfo.InvariantCulture, $"pid {pid} was created by the session but is alive after teardown");
            }
        }

        return null;
    }

    /// <summary>The pids whose last outside stop (SIGSTOP, a self-stop) was not followed by a continue, from the kernel log.</summary>
    public static IReadOnlySet<int> ExternallyStopped(IReadOnlyList<string> kernelLog)
    {
        ArgumentNullException.ThrowIfNull(kernelLog);
        var stopped = new HashSet<int>();
        foreach (var line in kernelLog)
        {
            var stop = line.EndsWith(": stopped by others", StringComparison.Ordinal);
            var resume = line.EndsWith(": continued by others", StringComparison.Ordinal);
            if ((stop || resume) && TryPid(line, out var pid))
            {
                if (stop)
                {
                    stopped.Add(pid);
                }
                else
                {
                    stopped.Remove(pid);
                }
            }
        }

        return stopped;
    }

    /// <summary>The pids whose control the kernel took away, from the kernel log.</summary>
    private static HashSet<int> ControlLostByKernel(IReadOnlyList<string> kernelLog)
    {
        var lost = new HashSet<int>();
        foreach (var line in kernelLog)
        {
            if (line.Contains(": control lost: ", StringComparison.Ordinal) && TryPid(line, out var pid))
            {
                lost.Add(pid);
            }
        }

        return lost;
    }

    private static bool TryPid(string line, out int pid)
    {
        pid = 0;
        var colon = line.IndexOf(':', StringComparison.Ordinal);
        return line.StartsWith("pid ", StringComparison.Ordinal) && colon > 4
            && int.TryParse(line.AsSpan(4, colon - 4), NumberStyles.Integer, CultureInfo.InvariantCulture, out pid);
    }

    /// <summary>S5–S8: references equal what the client holds; only cached read-only handles stay unreferenced, within the limit.</summary>
    private static string? CheckReferences(SimulationRun run, List<(Victim Victim, int References, bool Cacheable)> registered, int idleCached, int limit)
    {
        var unreferenced = 0;
        foreach (var (victim, references, cacheable) in registered)
        {
            var model = run.Models.FirstOrDefault(m => ReferenceEquals(m.Handle, victim.Handle));
            var low = model?.References ?? 0;
            var high = low + run.InflightAcquires(victim.Pid);
            if (references < low || references > high)
            {
                return string.Create(
                    CultureInfo.InvariantCulture,
                    $"{model?.Name ?? "an unseen handle"} (pid {victim.Pid}) has {references} reference(s), the client holds {low}{(high > low ? $" (+{high - low} in flight)" : string.Empty)}");
            }

            if (references == 0)
            {
                unreferenced++;
                if (!(victim.IsReadOnly && cacheable))
                {
                    return $"{model?.Name ?? "an unseen handle"} (pid {victim.Pid}) has no references but stays in the table without being a cached read-only handle";
                }
            }
        }

        if (unreferenced != idleCached)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{unreferenced} unreferenced handles in the table, the cache counts {idleCached}");
        }

        if (unreferenced > limit)
        {
            return string.Create(CultureInfo.InvariantCulture, $"the cache holds {unreferenced} unreferenced handles, over its limit of {limit}");
        }

        if (!run.TearingDown)
        {
            foreach (var model in run.Models)
            {
                if (model.References > 0 && !model.Handle.Victim.Registered)
                {
                    return string.Create(CultureInfo.InvariantCulture, $"the client holds {model.References} reference(s) to {model.Name} (pid {model.Handle.Pid}), but the session dropped it ({model.Handle.State})");
                }
            }
        }

        return null;
    }

    /// <summary>S10: an idle victim has every breakpoint out of its text.</summary>
    private static string? CheckIdleText(SimulationRun run, List<(Victim Victim, int References, bool Cacheable)> registered)
    {
        foreach (var (victim, _, _) in registered)
        {
            if (victim.State != VictimState.Idle || run.LostPids.Contains(victim.Pid))
            {
                continue;
            }

            var seen = run.Kernel.Observe(victim.Pid);
            if (!seen.Exists || seen.Zombie)
            {
                continue;
            }

            // In-victim counters stay in while the victim idles (issue 18): they never stop it.
            var jumps = run.Kernel.CounterEntries(victim.Pid);
            var differences = run.Kernel.TextDifferences(victim.Pid).Where(d => !jumps.Any(e => d >= e && d < e + FakeKernel.CounterJumpLength)).ToList();
            if (differences.Count > 0)
            {
                var model = run.Models.FirstOrDefault(m => ReferenceEquals(m.Handle, victim.Handle));
                return string.Create(CultureInfo.InvariantCulture, $"{model?.Name ?? "a handle"} (pid {victim.Pid}) is idle with a breakpoint in its text at 0x{differences[0]:x}");
            }
        }

        return null;
    }
}
