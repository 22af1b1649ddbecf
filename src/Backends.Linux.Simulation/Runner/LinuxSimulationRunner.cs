using ProcHex.Backends.Linux.Simulation.Kernel;

namespace ProcHex.Backends.Linux.Simulation.Runner;

/// <summary>One seed's outcome: its first violated invariant (null when none), its trace, what of S20 it covered.</summary>
internal sealed record LinuxSeedResult(int Seed, string? Violation, IReadOnlyList<string> Trace, IReadOnlySet<string> Covered, long KernelSteps)
{
    public bool Failed => Violation is not null;

    public IReadOnlyList<string> Tail(int lines) => Trace.Skip(Math.Max(0, Trace.Count - lines)).ToList();
}

/// <summary>Runs seeds of the Linux simulation: each on its own fake kernel and manual owner, so seeds run in parallel and each replays exactly.</summary>
internal static class LinuxSimulationRunner
{
    public static LinuxSeedResult Run(int seed, LinuxSimulationOptions? options = null)
    {
        options ??= new LinuxSimulationOptions();
        var run = new LinuxSimulationRun(seed, options);
        string? violation = null;
        try
        {
            run.Execute();
        }
        catch (InvariantViolationException e)
        {
            violation = e.Message;
        }
        catch (SimulationStalledException e)
        {
            violation = "stalled: a wait of the adapter would block for good: " + e.Message.Split('\n')[0];
        }
#pragma warning disable CA1031 // Any escape from the run is a failure of this seed, reported with its trace.
        catch (Exception e)
#pragma warning restore CA1031
        {
            violation = $"unexpected {e.GetType().Name}: {e.Message}";
            run.Kernel.Log.Add(e.ToString());
        }

        if (violation is not null)
        {
            run.Kernel.Log.Add("VIOLATION: " + violation);
        }

        return new LinuxSeedResult(seed, violation, run.Kernel.Log, run.Covered, run.Kernel.Steps);
    }

    /// <summary>Runs <paramref name="count"/> seeds from <paramref name="start"/> in parallel; results in seed order, traces kept only for failures.</summary>
    public static IReadOnlyList<LinuxSeedResult> RunMany(int start, int count, LinuxSimulationOptions? options = null)
    {
        var results = new LinuxSeedResult[count];
        Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            var result = Run(start + i, options);
            results[i] = result.Failed ? result : result with { Trace = [] };
        });
        return results;
    }
}
