using ProcHex.Backends.Fake;

namespace ProcHex.Simulation;

/// <summary>What one simulated seed does; everything else is drawn from the seed.</summary>
public sealed record SimulationOptions
{
    /// <summary>Inject seeded faults (ESRCH, EINTR, EPERM, EIO, short reads) into every port call.</summary>
    public bool Faults { get; init; }

    /// <summary>
    /// Let the actors set and remove counters (issue 18). Off, every seed runs as it did before counters were simulated,
    /// so a seed pinned to an older path keeps it.
    /// </summary>
    public bool Counters { get; init; } = true;

    /// <summary>Chance that one port call fails when <see cref="Faults"/> is on.</summary>
    public double FaultProbability { get; init; } = 0.02;

    /// <summary>Concurrent client flows, each a sequence of operations.</summary>
    public int Actors { get; init; } = 3;

    public int OperationsPerActor { get; init; } = 24;

    /// <summary>Kernel steps before a seed counts as stuck.</summary>
    public int MaxKernelSteps { get; init; } = 200_000;

    /// <summary>How many trace lines a failure shows.</summary>
    public int TraceTail { get; init; } = 40;

    /// <summary>Test hook: runs on the pump after the workload, before the death-notification check and teardown.</summary>
    public Func<SimulationRun, Task>? BeforeTeardown { get; init; }
}

/// <summary>The outcome of one seed: its violation (if any), its full trace and the fault sites it hit.</summary>
public sealed record SeedResult(int Seed, string? Violation, IReadOnlyList<string> Trace, IReadOnlySet<FaultSite> FaultHits, int KernelSteps)
{
    public bool Failed => Violation is not null;

    /// <summary>The last <paramref name="lines"/> trace lines.</summary>
    public IReadOnlyList<string> Tail(int lines) => [.. Trace.Skip(Math.Max(0, Trace.Count - lines))];
}

/// <summary>An invariant that does not hold: the run stops at once.</summary>
public sealed class InvariantViolationException : Exception
{
    public InvariantViolationException(string message) : base(message) { }

    public InvariantViolationException() : this("invariant violated") { }

    public InvariantViolationException(string message, Exception innerException) : base(message, innerException) { }
}
