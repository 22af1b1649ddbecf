namespace ProcHex.Backends.Linux.Simulation.Runner;

/// <summary>How the Linux simulation runs each seed.</summary>
internal sealed record LinuxSimulationOptions
{
    /// <summary>Rounds of (world steps, outsider signals, core requests) before the victim is let go.</summary>
    public int MinRounds { get; init; } = 30;

    public int MaxRounds { get; init; } = 120;

    /// <summary>Lines of trace printed for a failing seed (all with --trace).</summary>
    public int TraceTail { get; init; } = 60;

    /// <summary>The adapter's own trace-level log goes into the seed's trace too (slower; --trace).</summary>
    public bool AdapterLog { get; init; }

    /// <summary>
    /// The core changes a breakpoint while the victim runs, and a seed may release the victim to run and grab it
    /// again. Both draw from a random source of their own, so turned off every seed plays exactly as the seeds found
    /// before they existed (<see cref="FirstGeneration"/>).
    /// </summary>
    public bool ChangesWhileRunning { get; init; } = true;

    /// <summary>The world the seeds named in tests up to round 29 were found in: replays them as they were.</summary>
    public static LinuxSimulationOptions FirstGeneration { get; } = new() { ChangesWhileRunning = false };

    /// <summary>Test only: an S20 broken on purpose, to prove the invariants catch it. Production has no such knob.</summary>
    public S20Breakage Breakage { get; init; }
}

/// <summary>How <see cref="LinuxSimulationOptions.Breakage"/> breaks S20, by rewriting the machine's decisions.</summary>
internal enum S20Breakage
{
    None,

    /// <summary>Every park becomes a resume: once the core has seen the stop, threads are continued out of it.</summary>
    ResumeInsteadOfPark,

    /// <summary>The core is never told that someone else continued the victim: it stays held.</summary>
    ForgetResume,
}
