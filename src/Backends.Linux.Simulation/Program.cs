using System.Diagnostics;
using System.Globalization;
using ProcHex.Backends.Linux;
using ProcHex.Backends.Linux.Simulation.Runner;

// dotnet run --project src/Backends.Linux.Simulation -c Release -- --seeds 10000 [--start S] [--replay SEED] [--trace]
//   [--first-generation]: without the core's changes while the victim runs (seeds named before round 30 replay so)
//   [--require-coverage]: fail unless the seeds reached every transition that needs a stop-all (S20Coverage)
var seeds = 10_000;
var requireCoverage = false;
var start = 1;
int? replay = null;
var fullTrace = false;
var firstGeneration = false;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--seeds":
            seeds = int.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        case "--start":
            start = int.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        case "--replay":
            replay = int.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        case "--trace":
            fullTrace = true;
            break;
        case "--first-generation":
            firstGeneration = true;
            break;
        case "--require-coverage":
            requireCoverage = true;
            break;
        default:
            Console.Error.WriteLine($"unknown argument {args[i]}; usage: --seeds N [--start S] [--replay SEED] [--trace] [--first-generation] [--require-coverage]");
            return 2;
    }
}

var options = (firstGeneration ? LinuxSimulationOptions.FirstGeneration : new LinuxSimulationOptions()) with { AdapterLog = fullTrace };
var clock = Stopwatch.StartNew();
var results = replay is { } one
    ? [LinuxSimulationRunner.Run(one, options)]
    : LinuxSimulationRunner.RunMany(start, seeds, options);
var elapsed = clock.Elapsed.TotalSeconds;

var failures = results.Where(r => r.Failed).ToList();
foreach (var failure in failures)
{
    Console.WriteLine($"seed {failure.Seed} failed: {failure.Violation}");
    var lines = fullTrace ? failure.Trace : failure.Tail(options.TraceTail);
    Console.WriteLine($"  last {lines.Count} of {failure.Trace.Count} trace lines (replay: --replay {failure.Seed} --trace):");
    foreach (var line in lines)
    {
        Console.WriteLine("  | " + line);
    }
}

if (replay is not null && fullTrace && failures.Count == 0)
{
    foreach (var line in results[0].Trace)
    {
        Console.WriteLine("  | " + line);
    }
}

var covered = results.SelectMany(r => r.Covered).ToHashSet();
var missing = S20Coverage.All.Except(S20Coverage.Defensive).Where(t => !covered.Contains(t)).ToList();
Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"({results.Sum(r => r.KernelSteps)} kernel steps in {elapsed:F1}s, {results.Count / Math.Max(elapsed, 0.001):F0} seeds/s)"));
var reachable = S20Coverage.All.Count - S20Coverage.Defensive.Count;
Console.WriteLine($"transitions covered: {reachable - missing.Count} of {reachable} (and {S20Coverage.Defensive.Count} guards only a failed PTRACE_LISTEN reaches)");
if (missing.Count > 0)
{
    Console.WriteLine("  not covered: " + string.Join(", ", missing) + " (the exhaustive interleavings of StopByOthersMachineTests reach them)");
}

var extra = covered.Where(t => !S20Coverage.All.Contains(t)).Order().ToList();
if (extra.Count > 0)
{
    Console.Error.WriteLine("  also seen (not in the list): " + string.Join(", ", extra));
}

// The exhaustive interleaving tests prove every other transition; these only the simulation reaches.
var unproven = S20Coverage.ThroughStopAll.Where(t => !covered.Contains(t)).ToList();
if (requireCoverage && unproven.Count > 0)
{
    Console.WriteLine("  no seed reached (and nothing else proves): " + string.Join(", ", unproven) + "; run more seeds");
}

Console.WriteLine($"linux simulation: {results.Count} seeds, {failures.Count} failures");
return failures.Count == 0 && (!requireCoverage || unproven.Count == 0) ? 0 : 1;
