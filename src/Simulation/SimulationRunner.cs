using ProcHex.Backends.Fake;

namespace ProcHex.Simulation;

/// <summary>Runs seeds: each on its own deterministic scheduler, so seeds may run in parallel and each replays exactly.</summary>
public static class SimulationRunner
{
    /// <summary>Runs one seed to its end or its first violation.</summary>
    public static SeedResult Run(int seed, SimulationOptions? options = null)
    {
        options ??= new SimulationOptions();
        var run = new SimulationRun(seed, options);
        string? violation = null;
        var steps = 0;
        try
        {
            var scheduler = new DeterministicSchedulerOptions
            {
                Seed = seed,
                MaxSteps = options.MaxKernelSteps,
                Time = run.Time,
                KernelStepProbability = 0.1,
                FailOnForeignPost = true,
                ForeignWorkGrace = TimeSpan.FromMilliseconds(200),
                AfterKernelStep = _ =>
                {
                    steps++;
                    run.CheckNow();
                },
            };
            DeterministicScheduler.Run(run.RunAsync, run.Kernel, scheduler);
            violation = Invariants.CheckFinal(run);
        }
        catch (InvariantViolationException ex)
        {
            violation = ex.Message;
        }
        catch (SimulationStuckException ex)
        {
            violation = $"stuck: {ex.Message}";
        }
#pragma warning disable CA1031 // Any escape from the run is a failure of this seed, reported with its trace.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            violation = $"unexpected {ex.GetType().Name}: {ex.Message}";
        }

        if (violation is not null)
        {
            run.Trace.Add("VIOLATION: " + violation);
        }
        else
        {
            run.Trace.Flush();
        }

        return new SeedResult(seed, violation, run.Trace.Lines, run.Kernel.Faults.Hits, steps);
    }

    /// <summary>Runs <paramref name="count"/> seeds from <paramref name="start"/>, in parallel; results in seed order.</summary>
    public static IReadOnlyList<SeedResult> RunMany(int start, int count, SimulationOptions? options = null, int? parallelism = null)
    {
        var results = new SeedResult[count];
        Parallel.For(
            0,
            count,
            new ParallelOptions { MaxDegreeOfParallelism = parallelism ?? Environment.ProcessorCount },
            i => results[i] = Run(start + i, options));
        return results;
    }

    /// <summary>
    /// Every (operation, errno) pair the core can meet: the port calls it makes, with each default error. Registers are
    /// read only for a handler that uses its hit context, and the simulation's handlers only count.
    /// </summary>
    public static IReadOnlyList<FaultSite> AllFaultSites { get; } =
    [
        .. Enum.GetValues<FakeOperation>()
            .Where(o => o is not (FakeOperation.ReadFirstArgument or FakeOperation.WriteMemory or FakeOperation.ReadRegisters))
            .SelectMany(o => FaultPlan.DefaultErrors.Select(e => new FaultSite(o, e))),
    ];
}
