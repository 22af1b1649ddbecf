using System.Globalization;
using System.Text;

namespace ProcHex.Peers;

/// <summary>The finished report, and whether one of our own paths miscounted (which fails the run).</summary>
internal sealed record BenchReport(string Markdown, bool ProcHexMiscounted);

/// <summary>Builds the fixture, runs every peer in rounds (so contention spreads over all of them), and reports.</summary>
internal static class Bench
{
    private static readonly int[] Threadings = [1, 4];

    public static async Task<BenchReport> RunAsync(Settings settings)
    {
        Progress($"building the fixture with gcc ({settings.Mode} mode)");
        using var fixture = await Fixture.BuildAsync();
        if (!fixture.FirstInstructionIsEmulatable)
        {
            throw new BenchFailure($"{Fixture.Function} opens with '{fixture.FirstInstruction}', not endbr64, push %rbp or a nop: the emulated path would not be measured");
        }

        var emulated = new LibraryPeer(emulate: true);
        var plain = new LibraryPeer(emulate: false);
        var inVictim = new LibraryPeer(emulate: true, inVictim: true);
        var gdb = new GdbPeer(Tool.Find("gdb"));
        var ltrace = new LtracePeer(Tool.Find("ltrace"));
        var uprobes = new UprobesPeer(Tool.Find("perf"));
        var ctracer = new CTracerPeer();
        var cli = new CliPeer("ProcHex CLI (prochex run --count, in-victim)", DotnetHost(), CliDll());
        Peer[] peers = [emulated, plain, inVictim, cli, ctracer, gdb, ltrace, uprobes];
        try
        {
            foreach (var skipped in peers.Where(p => p.Unavailable is not null))
            {
                Progress($"skipping {skipped.Name}: {skipped.Unavailable}");
            }

            var runnable = peers.Where(p => p.Unavailable is null).ToArray();
            await WarmUpAsync(fixture, [emulated, plain, inVictim], settings.WarmUpCalls);

            var results = new Dictionary<(Peer, int), List<PeerRun>>();
            foreach (var threads in Threadings)
            {
                for (var round = 1; round <= settings.Runs; round++)
                {
                    foreach (var peer in runnable)
                    {
                        var calls = peer.Slow ? settings.SlowCalls : peer.Fast ? settings.Calls * Peer.FastFactor : settings.Calls;
                        var run = await RunOnceAsync(peer, fixture, calls, threads);
                        Progress(string.Create(
                            CultureInfo.InvariantCulture,
                            $"{peer.Name}, {threads} thread(s), run {round}/{settings.Runs}: {run.HitsPerSecond:N0} hits/s, {run.Verdict}, wall {run.Wall.TotalSeconds:0.00} s"));
                        results.TryAdd((peer, threads), []);
                        results[(peer, threads)].Add(run);
                    }
                }
            }

            var latency = await LatencyAsync(fixture, emulated, gdb, settings.LatencyRuns);
            Progress("in-victim install and removal of 100 counters, 4 threads running");
            var install = await inVictim.InstallLatencyAsync(fixture.Many, rounds: Math.Max(3, settings.LatencyRuns));
            Progress($"in-victim counter: counted {inVictim.LastMode}");
            var markdown = await ReportAsync(settings, fixture, peers, results, emulated, plain, ctracer, gdb, ltrace, latency, inVictim, uprobes, install);
            var miscounted = results.Any(r => r.Key.Item1.IsProcHex && r.Value.Any(run => !run.Exact)) || install.Problem is not null;
            return new BenchReport(markdown, miscounted);
        }
        finally
        {
            await emulated.DisposeAsync();
            await plain.DisposeAsync();
            await inVictim.DisposeAsync();
            await uprobes.RemoveAsync();
        }
    }

    /// <summary>Only the in-victim install and removal of 100 counters, <see cref="Settings.Runs"/> rounds (<c>--install</c>).</summary>
    public static async Task<BenchReport> InstallOnlyAsync(Settings settings)
    {
        using var fixture = await Fixture.BuildAsync();
        var inVictim = new LibraryPeer(emulate: true, inVictim: true);
        try
        {
            var install = await inVictim.InstallLatencyAsync(fixture.Many, rounds: settings.Runs);
            var report = new System.Text.StringBuilder();
            InstallTable(line => report.Append(line).Append('\n'), install);
            return new BenchReport(report.ToString(), install.Problem is not null);
        }
        finally
        {
            await inVictim.DisposeAsync();
        }
    }

    /// <summary>The emulated library path alone, single-threaded, with the allocating types listed.</summary>
    public static async Task ProfileAllocationsAsync(Settings settings)
    {
        using var fixture = await Fixture.BuildAsync();
        var emulated = new LibraryPeer(emulate: true);
        try
        {
            await WarmUpAsync(fixture, [emulated], settings.WarmUpCalls);
            using var profile = new AllocationProfile();
            var run = await emulated.RunAsync(fixture, settings.Calls, 1);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{run.Calls:N0} calls, {run.Verdict}, {run.BytesPerHit:N0} B/hit; allocation ticks (~100 KB each) by type:"));
            foreach (var (type, ticks) in profile.Top(15))
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{ticks,8}  {type}"));
            }
        }
        finally
        {
            await emulated.DisposeAsync();
        }
    }

    /// <summary>The in-victim install and removal table (issue 18's ≤ 5 ms stop target).</summary>
    private static void InstallTable(Action<string> line, InstallRounds install)
    {
        line("## In-victim install and removal: 100 counters at once, 4 threads calling them (ms)");
        line(string.Empty);
        line("Every thread of the running victim stays stopped while a batch goes in or out (`prochex.counters.stopped`);");
        line("the library calls around it (`SetPendingCounterAsync(\"many`many_*\")`, `RemovePendingBreakpointAsync`) add the");
        line("wildcard lookup and the analysis, made while the victim runs. Before the first install the arena is mapped in a");
        line("stop of its own (six injected system calls). Target: stopped ≤ 5 ms.");
        line(string.Empty);
        line("| What is timed | ms |");
        line("|---|---:|");
        List<double> Stops(string change) => [.. install.Stopped.Where(s => s.Change == change).Select(s => s.Seconds * 1000)];
        var installs = Stops("install");
        if (installs.Count > 0)
        {
            line($"| stopped, mapping the arena (once) | {Spread.Of(Stops("arena"))?.Format() ?? "—"} |");
            line($"| stopped, first install | {Spread.Number(installs[0])} |");
            line($"| stopped, later installs | {Spread.Of(installs.Skip(1))?.Format() ?? "—"} |");
            line($"| stopped, removals | {Spread.Of(Stops("remove"))?.Format() ?? "—"} |");
        }

        if (install.Calls.Count > 0)
        {
            line($"| library call, later installs | {Spread.Of(install.Calls.Skip(1).Select(r => r.Install.TotalMilliseconds))?.Format() ?? "—"} |");
            line($"| library call, removals | {Spread.Of(install.Calls.Select(r => r.Remove.TotalMilliseconds))?.Format() ?? "—"} |");
        }

        if (install.Problem is { } problem)
        {
            line($"| problem | {problem} |");
        }

        line(string.Empty);
    }

    /// <summary>A peer that hangs or fails to start is reported as such; the other peers still run.</summary>
    private static async Task<PeerRun> RunOnceAsync(Peer peer, Fixture fixture, int calls, int threads)
    {
        try
        {
            return await peer.RunAsync(fixture, calls, threads);
        }
        catch (Exception ex) when (ex is TimeoutException or BenchFailure or ProcHexException or System.ComponentModel.Win32Exception)
        {
            return new PeerRun(calls, 0, 0, 0, TimeSpan.Zero, ex.Message.Split('\n')[0]);
        }
    }

    /// <summary>JIT, the owner thread and the wake process: nothing of this start-up belongs in the figures.</summary>
    private static async Task WarmUpAsync(Fixture fixture, LibraryPeer[] peers, int calls)
    {
        foreach (var peer in peers)
        {
            foreach (var threads in Threadings)
            {
                var run = await peer.RunAsync(fixture, calls, threads);
                Progress($"warm-up {peer.Name}, {threads} thread(s): {run.Verdict}");
            }
        }
    }

    private sealed record Latency(Spread? ProcHex, Spread? GdbRun, Spread? GdbLoad, string? Skipped);

    private static async Task<Latency> LatencyAsync(Fixture fixture, LibraryPeer procHex, GdbPeer gdb, int runs)
    {
        _ = await procHex.CreateToMainAsync(fixture.Tiny);
        var ours = new List<double>();
        var gdbRun = new List<double>();
        var gdbLoad = new List<double>();
        var gdbProblem = gdb.Unavailable;
        for (var i = 0; i < runs; i++)
        {
            ours.Add((await procHex.CreateToMainAsync(fixture.Tiny)).TotalMilliseconds);
            if (gdbProblem is null)
            {
                try
                {
                    gdbRun.Add((await gdb.ToMainAsync(fixture.Tiny, run: true)).TotalMilliseconds);
                    gdbLoad.Add((await gdb.ToMainAsync(fixture.Tiny, run: false)).TotalMilliseconds);
                }
                catch (Exception ex) when (ex is BenchFailure or TimeoutException)
                {
                    // gdb's trouble is gdb's: reported in the table, not a failure of the bench.
                    gdbProblem = ex.Message.Split('\n')[0];
                }
            }
        }

        Progress($"create-to-main measured ({runs} runs)");
        return new Latency(Spread.Of(ours), gdbProblem is null ? Spread.Of(gdbRun) : null, gdbProblem is null ? Spread.Of(gdbLoad) : null, gdbProblem);
    }

    private static async Task<string> ReportAsync(
        Settings settings,
        Fixture fixture,
        Peer[] peers,
        Dictionary<(Peer, int), List<PeerRun>> results,
        LibraryPeer emulated,
        LibraryPeer plain,
        CTracerPeer ctracer,
        GdbPeer gdb,
        LtracePeer ltrace,
        Latency latency,
        LibraryPeer inVictim,
        UprobesPeer uprobes,
        InstallRounds install)
    {
        var md = new StringBuilder();
        void Line(string text = "") => md.Append(text).Append('\n');
        Spread? Rate(Peer peer, int threads) =>
            results.TryGetValue((peer, threads), out var runs) ? Spread.Of(runs.Where(r => r.Problem is null).Select(r => r.HitsPerSecond)) : null;
        string Count(Peer peer, int threads)
        {
            if (!results.TryGetValue((peer, threads), out var runs))
            {
                return "—";
            }

            var bad = runs.Where(r => !r.Exact).ToList();
            return bad.Count == 0 ? "exact" : $"**{bad.Count}/{runs.Count} runs wrong**: {bad[0].Verdict}";
        }

        Line("# ProcHex breakpoint throughput, side by side");
        Line();
        Line(await Machine.DescribeAsync());
        Line(string.Create(CultureInfo.InvariantCulture, $"- Mode: `--{settings.Mode}`, {settings.Runs} run(s) per figure; N = {settings.Calls:N0} calls per run ({settings.SlowCalls:N0} for gdb and ltrace, {settings.Calls * Peer.FastFactor:N0} for in-victim counting), in all, split over the threads"));
        Line($"- Fixture: the driver calls `{Fixture.Spec}` (first instruction `{fixture.FirstInstruction}`) through its PLT; hits/s = N / the driver's own calling loop (CLOCK_MONOTONIC around the calls and joins), so tracer start-up is not counted");
        Line();
        Line("## Throughput (hits/s: median (min–max))");
        Line();
        Line("| Peer | 1 thread | 4 threads | count, 1 thread | count, 4 threads |");
        Line("|---|---:|---:|---|---|");
        foreach (var peer in peers)
        {
            if (peer.Unavailable is { } why)
            {
                Line($"| {peer.Name} | skipped | skipped | {why} | |");
                continue;
            }

            Line($"| {peer.Name} | {Rate(peer, 1)?.Format() ?? "—"} | {Rate(peer, 4)?.Format() ?? "—"} | {Count(peer, 1)} | {Count(peer, 4)} |");
        }

        Line();
        Line("## Ratios (ProcHex median ÷ peer median)");
        Line();
        Line("| Peer | emulated, 1 thread | plain, 1 thread | emulated, 4 threads | plain, 4 threads |");
        Line("|---|---:|---:|---:|---:|");
        string Ratio(Peer ours, Peer peer, int threads) =>
            Rate(ours, threads) is { } a && Rate(peer, threads) is { Median: > 0 } b ? $"{a.Median / b.Median:0.00}×" : "—";
        foreach (var peer in peers.Where(p => p is not LibraryPeer && p.Unavailable is null))
        {
            Line($"| {peer.Name} | {Ratio(emulated, peer, 1)} | {Ratio(plain, peer, 1)} | {Ratio(emulated, peer, 4)} | {Ratio(plain, peer, 4)} |");
        }

        Line();
        Line("## Targets");
        Line();
        Line("| Target | 1 thread | 4 threads |");
        Line("|---|---|---|");
        string Target(LibraryPeer ours, Peer peer, double factor, int threads)
        {
            if (peer.Unavailable is not null)
            {
                return "n/a (skipped)";
            }

            if (Rate(ours, threads) is not { } a || Rate(peer, threads) is not { Median: > 0 } b)
            {
                return "n/a (no result)";
            }

            var ratio = a.Median / b.Median;
            var verdict = ratio >= factor ? "met" : "**missed**";
            var caveat = results[(peer, threads)].Any(r => !r.Exact) ? "; the peer miscounted" : "";
            return string.Create(CultureInfo.InvariantCulture, $"{ratio:0.00}× — {verdict}{caveat}");
        }

        void TargetRow(string name, LibraryPeer ours, Peer peer, double factor) =>
            Line($"| {name} | {Target(ours, peer, factor, 1)} | {Target(ours, peer, factor, 4)} |");
        TargetRow("emulated ≥ 1.5× the C tracer", emulated, ctracer, 1.5);
        TargetRow("plain ≥ 0.9× the C tracer", plain, ctracer, 0.9);
        TargetRow("emulated ≥ 10× gdb", emulated, gdb, 10);
        TargetRow("emulated ≥ 3× ltrace", emulated, ltrace, 3);
        TargetRow($"in-victim ≥ 1,000× the trap path (emulated); counted {inVictim.LastMode}", inVictim, emulated, 1000);
        TargetRow("in-victim ≥ 100× gdb", inVictim, gdb, 100);
        TargetRow("in-victim ≥ 100× kernel uprobes", inVictim, uprobes, 100);
        Line();
        Line("The C tracer does not stop the other threads while it single-steps the restored instruction; on 4 threads the");
        Line("calls made in that window are not counted (the race it accepts, see c/ctrace.c). ProcHex's plain path stops them.");
        Line();
        Line("## Allocations on the hot path (library, whole process, Continue to Exited, after a warm-up)");
        Line();
        Line("| Path | 1 thread | 4 threads |");
        Line("|---|---:|---:|");
        foreach (var ours in new[] { emulated, plain })
        {
            string Bytes(int threads) =>
                results.TryGetValue((ours, threads), out var runs) && Spread.Of(runs.Where(r => r.BytesPerHit is not null).Select(r => r.BytesPerHit!.Value)) is { } s
                    ? s.Format(" B/hit")
                    : "—";
            Line($"| {ours.Name} | {Bytes(1)} | {Bytes(4)} |");
        }

        Line();
        InstallTable(text => Line(text), install);
        Line("## Create-to-main latency (ms: median (min–max))");
        Line();
        Line("| What is timed | ms |");
        Line("|---|---:|");
        Line($"| ProcHex: `CreateAsync(tiny, StopAt = Main)` until it returns with the victim parked at main (in process, warm) | {latency.ProcHex?.Format() ?? "—"} |");
        if (latency.Skipped is { } skipped)
        {
            Line($"| gdb | skipped: {skipped} |");
        }
        else
        {
            Line($"| gdb: the whole `gdb -batch -nx -ex 'break main' -ex run tiny`, spawn to exit | {latency.GdbRun?.Format() ?? "—"} |");
            Line($"| gdb: `gdb -batch -nx tiny` (start-up and symbols only) | {latency.GdbLoad?.Format() ?? "—"} |");
            if (latency.GdbRun is { } r && latency.GdbLoad is { } l)
            {
                Line($"| gdb: the difference of the medians (run to main and kill) | {Spread.Number(r.Median - l.Median)} |");
            }
        }

        Line();
        return md.ToString();
    }

    public static string CliDll()
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "prochex.dll");
        return File.Exists(dll) && File.Exists(Path.ChangeExtension(dll, ".runtimeconfig.json"))
            ? dll
            : throw new BenchFailure($"the CLI is not next to the bench ({dll} and its runtimeconfig.json)");
    }

    public static string DotnetHost()
    {
        if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host))
        {
            return host;
        }

        if (Environment.GetEnvironmentVariable("DOTNET_ROOT") is { Length: > 0 } root && File.Exists(Path.Combine(root, "dotnet")))
        {
            return Path.Combine(root, "dotnet");
        }

        return Tool.Find("dotnet") ?? throw new BenchFailure("dotnet is not on PATH (the CLI peer runs `dotnet prochex.dll`)");
    }

    private static void Progress(string message) => Console.Error.WriteLine("# " + message);
}
