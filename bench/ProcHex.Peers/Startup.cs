using System.Globalization;
using System.Text;

namespace ProcHex.Peers;

/// <summary>
/// <c>--startup</c>: what one counting run costs from spawn to exit. <c>prochex run --count malloc -- /bin/true</c>
/// as the native (NativeAOT) binary and as the JIT one (<c>dotnet prochex.dll</c>), against gdb -batch and ltrace -c
/// doing the same count, each timed and measured (peak RSS) by c/maxrss.c, in rounds; then the trap path of the two
/// CLIs (hits/s on the peer fixture), since start-up is not all a native build changes.
/// </summary>
internal static class Startup
{
    private const string Program = "/bin/true";
    private const string Function = "malloc";

    private sealed record Contender(string Name, string[] Command, string? Unavailable = null);

    private sealed record Sample(double Milliseconds, double Megabytes, int Status);

    public static async Task<BenchReport> RunAsync(Settings settings)
    {
        var native = settings.NativeCli is { } path && File.Exists(path)
            ? Path.GetFullPath(path)
            : throw new BenchFailure($"--startup needs --native PATH, the published native prochex ({settings.NativeCli ?? "not given"} is not a file): dotnet publish src/Cli -c Release -r linux-x64 -o artifacts/native");
        using var fixtures = await Fixtures.BuildAsync(BuildVariant.Endbr64);
        var fixture = fixtures.First;
        var gcc = Tool.Find("gcc")!;
        var maxrss = Path.Combine(fixture.Directory, "maxrss");
        await Tool.MustRunAsync(gcc, "-O2", "-Wall", "-Wextra", "-Werror", "-o", maxrss, Path.Combine(AppContext.BaseDirectory, "c", "maxrss.c"));
        var gdbScript = Path.Combine(fixture.Directory, "count-malloc.gdb");
        await File.WriteAllTextAsync(gdbScript, $"""
            set pagination off
            set confirm off
            set breakpoint pending on
            set startup-with-shell off
            break {Function}
            commands
            silent
            continue
            end
            run
            info breakpoints

            """);

        var gdb = Tool.Find("gdb");
        var ltrace = Tool.Find("ltrace");
        string[] count = ["run", "--count", Function, "--", Program];
        Contender[] tools =
        [
            new("prochex, native (NativeAOT)", [native, .. count]),
            new("prochex, JIT (dotnet prochex.dll)", [Bench.DotnetHost(), Bench.CliDll(), .. count]),
            new("gdb -batch (break malloc, silent/continue)", [gdb ?? "gdb", "-batch", "-nx", "-x", gdbScript, "--args", Program], gdb is null ? "gdb is not installed" : null),
            new("ltrace -c -e malloc", [ltrace ?? "ltrace", "-c", "-e", Function, "-o", Path.Combine(fixture.Directory, "ltrace.out"), Program], ltrace is null ? "ltrace is not installed" : null),
            new("/bin/true alone (no tracer)", [Program]),
        ];

        var samples = tools.ToDictionary(t => t, _ => new List<Sample>());
        var runnable = tools.Where(t => t.Unavailable is null).ToArray();
        foreach (var tool in runnable)
        {
            _ = await MeasureAsync(maxrss, tool); // page cache and the like: not part of the figures
        }

        for (var round = 1; round <= settings.Runs; round++)
        {
            foreach (var tool in runnable)
            {
                samples[tool].Add(await MeasureAsync(maxrss, tool));
            }
        }

        Progress($"start-up measured ({settings.Runs} rounds)");
        var (nativePath, jitPath) = await TrapPathAsync(fixture, settings, native);
        var report = Report(settings, tools, samples, nativePath, jitPath, await Machine.DescribeAsync());
        var failed = samples.Any(s => s.Key.Unavailable is null && s.Value.Any(x => x.Status != 0))
            || nativePath.Concat(jitPath).Any(r => !r.Exact);
        return new BenchReport(report, failed);
    }

    private static async Task<Sample> MeasureAsync(string maxrss, Contender tool)
    {
        var result = await Tool.RunAsync(maxrss, tool.Command, TimeSpan.FromMinutes(1));
        var line = result.Stdout.Split('\n').LastOrDefault(l => l.StartsWith("maxrss ", StringComparison.Ordinal))
            ?? throw new BenchFailure($"maxrss said nothing about {tool.Name}:\n{result.Stdout}{result.Stderr}");
        var parts = line.Split(' ');
        var sample = new Sample(
            long.Parse(parts[1], CultureInfo.InvariantCulture) / 1e6,
            long.Parse(parts[2], CultureInfo.InvariantCulture) / 1024.0,
            int.Parse(parts[3], CultureInfo.InvariantCulture));
        if (sample.Status != 0)
        {
            Progress($"{tool.Name} exited {sample.Status}: {result.Stderr.Split('\n')[0]}");
        }

        return sample;
    }

    /// <summary>The two CLIs on the peer fixture, alternating, one thread: the trap path without start-up.</summary>
    private static async Task<(List<PeerRun> Native, List<PeerRun> Jit)> TrapPathAsync(Fixture fixture, Settings settings, string native)
    {
        var nativeCli = new CliPeer("prochex, native", native) { CountMode = "trap" };
        var jitCli = new CliPeer("prochex, JIT", Bench.DotnetHost(), Bench.CliDll()) { CountMode = "trap" };
        var runs = (Native: new List<PeerRun>(), Jit: new List<PeerRun>());
        for (var round = 1; round <= settings.TrapRuns; round++)
        {
            foreach (var (peer, list) in new[] { (nativeCli, runs.Native), (jitCli, runs.Jit) })
            {
                var run = await peer.RunAsync(fixture, settings.Calls, threads: 1);
                Progress(string.Create(CultureInfo.InvariantCulture, $"{peer.Name} trap path, run {round}/{settings.TrapRuns}: {run.HitsPerSecond:N0} hits/s, {run.Verdict}"));
                list.Add(run);
            }
        }

        return runs;
    }

    private static string Report(
        Settings settings,
        Contender[] tools,
        Dictionary<Contender, List<Sample>> samples,
        List<PeerRun> nativePath,
        List<PeerRun> jitPath,
        string machine)
    {
        var md = new StringBuilder();
        void Line(string text = "") => md.Append(text).Append('\n');
        Spread? Time(Contender t) => Spread.Of(samples[t].Select(s => s.Milliseconds));
        Spread? Rss(Contender t) => Spread.Of(samples[t].Select(s => s.Megabytes));
        var gdb = tools[2];
        var gdbTime = gdb.Unavailable is null ? Time(gdb) : null;

        Line("# prochex start-up and memory, native and JIT, side by side");
        Line();
        Line(machine);
        Line(string.Create(CultureInfo.InvariantCulture, $"- Mode: `--startup`, {settings.Runs} rounds (every tool once per round, after one unmeasured run each); the trap path: {settings.TrapRuns} run(s) of N = {settings.Calls:N0} calls per CLI"));
        Line($"- Each tool counts `{Function}` in `{Program}` and is timed from fork to wait4 by c/maxrss.c, which reads the peak RSS from wait4's rusage");
        Line();
        Line("## Start-to-exit (ms) and peak RSS (MB): median (min–max)");
        Line();
        Line("| Tool | start-to-exit ms | ÷ gdb | peak RSS MB | exit |");
        Line("|---|---:|---:|---:|---|");
        foreach (var tool in tools)
        {
            if (tool.Unavailable is { } why)
            {
                Line($"| {tool.Name} | skipped: {why} | | | |");
                continue;
            }

            var ratio = Time(tool) is { } t && gdbTime is { Median: > 0 } g ? string.Create(CultureInfo.InvariantCulture, $"{t.Median / g.Median:0.000}×") : "—";
            var bad = samples[tool].Count(s => s.Status != 0);
            Line($"| {tool.Name} | {Time(tool)?.Format() ?? "—"} | {ratio} | {Rss(tool)?.Format() ?? "—"} | {(bad == 0 ? "0" : $"**{bad} runs failed**")} |");
        }

        Line();
        Line("## Trap path of the CLI (hits/s on the peer fixture, 1 thread: median (min–max))");
        Line();
        var nativeRate = Spread.Of(nativePath.Where(r => r.Problem is null).Select(r => r.HitsPerSecond));
        var jitRate = Spread.Of(jitPath.Where(r => r.Problem is null).Select(r => r.HitsPerSecond));
        Line("| CLI | hits/s | count |");
        Line("|---|---:|---|");
        Line($"| prochex, native | {nativeRate?.Format() ?? "—"} | {Verdict(nativePath)} |");
        Line($"| prochex, JIT | {jitRate?.Format() ?? "—"} | {Verdict(jitPath)} |");
        Line();
        Line("## Targets");
        Line();
        Line("| Target | figure | verdict |");
        Line("|---|---:|---|");
        var nativeTool = tools[0];
        if (Time(nativeTool) is { } nt && gdbTime is { Median: > 0 } gt)
        {
            Target("native start-to-exit ≤ 0.25× gdb's", nt.Median / gt.Median, "0.000×", nt.Median / gt.Median <= 0.25);
        }
        else
        {
            Line("| native start-to-exit ≤ 0.25× gdb's | n/a (gdb skipped) | |");
        }

        if (Rss(nativeTool) is { } nr)
        {
            Target("native peak RSS ≤ 25 MB", nr.Median, "0.0 MB", nr.Median <= 25);
        }

        if (nativeRate is { } n && jitRate is { Median: > 0 } j)
        {
            Target("native trap path ≥ 1.0× the JIT's", n.Median / j.Median, "0.00×", n.Median / j.Median >= 1.0);
        }

        Line();
        return md.ToString();

        void Target(string name, double figure, string format, bool met) =>
            Line($"| {name} | {figure.ToString(format, CultureInfo.InvariantCulture)} | {(met ? "met" : "**missed**")} |");
    }

    private static string Verdict(List<PeerRun> runs)
    {
        var bad = runs.Where(r => !r.Exact).ToList();
        return bad.Count == 0 ? "exact" : $"**{bad.Count}/{runs.Count} runs wrong**: {bad[0].Verdict}";
    }

    private static void Progress(string message) => Console.Error.WriteLine("# " + message);
}
