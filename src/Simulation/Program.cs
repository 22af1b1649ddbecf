using System.Diagnostics;
using System.Globalization;
using ProcHex.Simulation;

// dotnet run --project src/Simulation -c Release -- --seeds 2000 [--start S] [--replay SEED] [--faults] [--trace]
var seeds = 2000;
var start = 1;
int? replay = null;
var faults = false;
var fullTrace = false;
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
        case "--faults":
            faults = true;
            break;
        case "--trace":
            fullTrace = true;
            break;
        default:
            Console.Error.WriteLine($"unknown argument {args[i]}; usage: --seeds N [--start S] [--replay SEED] [--faults] [--trace]");
            return 2;
    }
}

var options = new SimulationOptions { Faults = faults };
var clock = Stopwatch.StartNew();
var results = replay is { } one
    ? [SimulationRunner.Run(one, options)]
    : SimulationRunner.RunMany(start, seeds, options);

var failures = results.Where(r => r.Failed).ToList();
foreach (var failure in failures)
{
    Console.WriteLine($"seed {failure.Seed} failed: {failure.Violation}");
    var lines = fullTrace ? failure.Trace : failure.Tail(options.TraceTail);
    Console.WriteLine($"  last {lines.Count} of {failure.Trace.Count} trace lines (replay: --replay {failure.Seed}{(faults ? " --faults" : string.Empty)} --trace):");
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

Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"({results.Sum(r => (long)r.KernelSteps)} kernel steps in {clock.Elapsed.TotalSeconds:F1}s)"));
Console.WriteLine($"simulation: {results.Count} seeds, {failures.Count} failures");
if (faults)
{
    var hit = results.SelectMany(r => r.FaultHits).ToHashSet();
    var covered = SimulationRunner.AllFaultSites.Count(hit.Contains);
    Console.WriteLine($"fault sites covered: {covered} of {SimulationRunner.AllFaultSites.Count}");
    var missing = SimulationRunner.AllFaultSites.Where(s => !hit.Contains(s)).ToList();
    if (missing.Count > 0)
    {
        Console.Error.WriteLine("  not covered: " + string.Join(", ", missing));
    }
}

return failures.Count == 0 ? 0 : 1;
