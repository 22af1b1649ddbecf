using System.Globalization;
using System.Text;

namespace ProcHex.Peers;

/// <summary>
/// The markdown report of the throughput bench: per build of the fixture, throughput (peer × threading, with whether
/// the count was exact), ratios and targets; then allocations, in-victim install times and create-to-main latency.
/// </summary>
internal sealed class Report
{
    private readonly StringBuilder _md = new();
    private readonly Settings _settings;
    private readonly Contenders _peers;
    private readonly Results _results;

    private Report(Settings settings, Contenders peers, Results results)
    {
        _settings = settings;
        _peers = peers;
        _results = results;
    }

    private static int[] Threadings => Bench.Threadings;

    public static async Task<string> WriteAsync(Settings settings, Fixtures fixtures, Contenders peers, Results results, Bench.Latency latency, InstallRounds install)
    {
        var report = new Report(settings, peers, results);
        await report.HeaderAsync(fixtures);
        foreach (var build in fixtures.Builds)
        {
            report.Build(build);
        }

        report.Line("The two-stop C tracer does not stop the other threads while it single-steps the restored instruction; on several threads");
        report.Line("the calls made in that window are not counted (the race it accepts, see c/ctrace.c). ProcHex's plain path stops them.");
        report.Line();
        report.Allocations(fixtures);
        InstallTable(text => report.Line(text), install);
        report.LatencyTable(latency);
        return report._md.ToString();
    }

    /// <summary>The in-victim install and removal table (issue 18's ≤ 5 ms stop target).</summary>
    public static void InstallTable(Action<string> line, InstallRounds install)
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

    private void Line(string text = "") => _md.Append(text).Append('\n');

    private static string Columns(Func<int, string> cell) => string.Join(" | ", Threadings.Select(cell));

    /// <summary>A table's separator cells, one per threading.</summary>
    private static string Rules(string rule) => string.Join("|", Threadings.Select(_ => rule));

    private static string Plural(int threads) => threads == 1 ? "1 thread" : $"{threads} threads";

    private async Task HeaderAsync(Fixtures fixtures)
    {
        var s = _settings;
        Line("# ProcHex breakpoint throughput, side by side");
        Line();
        Line(await Machine.DescribeAsync());
        Line(string.Create(CultureInfo.InvariantCulture, $"- Mode: `--{s.Mode}`, {s.Runs} run(s) per figure; N = {s.Calls:N0} calls per run ({s.SlowCalls:N0} for gdb and ltrace, {s.Calls * Peer.FastFactor:N0} for in-victim counting and the untraced driver), in all, split over the threads"));
        Line($"- Fixture: the driver calls `{Fixture.Spec}` through its PLT; hits/s = N / the driver's own calling loop (CLOCK_MONOTONIC around the calls and joins), so tracer start-up is not counted");
        Line($"- Builds of libpeer.so (`gcc -shared -fPIC` and): {string.Join("; ", fixtures.Builds.Select(b => $"`{b.Variant.Name}` = `{b.Variant.CommandLine}`, first instruction `{b.FirstInstruction}`"))}");
        Line();
    }

    /// <summary>One build's throughput, ratio and target tables.</summary>
    private void Build(Fixture build)
    {
        Line($"## Build `{build.Variant.Name}` (`{build.Variant.CommandLine}`): {Fixture.Function} opens with `{build.FirstInstruction}`");
        Line();
        if (!build.FirstInstructionIsEmulatable)
        {
            Line("That is not endbr64, push %rbp or a nop, the openings the bench knows ProcHex emulates: unless its emulator takes");
            Line("this one too, the emulated path steps it out of line, as the plain path does.");
            Line();
        }

        Throughput(build);
        Ratios(build);
        Targets(build);
    }

    private void Throughput(Fixture build)
    {
        Line("### Throughput (hits/s: median (min–max))");
        Line();
        Line($"| Peer | {Columns(Plural)} | {Columns(t => "count, " + Plural(t))} |");
        Line($"|---|{Rules("---:")}|{Rules("---")}|");
        foreach (var peer in _peers.All)
        {
            if (peer.Unavailable is { } why)
            {
                Line($"| {peer.Name} | {Columns(_ => "skipped")} | {why} |{string.Concat(Threadings.Skip(1).Select(_ => " |"))}");
                continue;
            }

            Line($"| {peer.Name} | {Columns(t => Rate(build, peer, t))} | {Columns(t => Count(build, peer, t))} |");
        }

        Line();
    }

    private string Rate(Fixture build, Peer peer, int threads) =>
        _results.Rate(build, peer, threads)?.Format() ?? "—";

    private string Count(Fixture build, Peer peer, int threads)
    {
        if (_results.Of(build, peer, threads) is not { } runs)
        {
            return "—";
        }

        var bad = runs.Where(r => !r.Exact).ToList();
        return bad.Count == 0 ? "exact" : $"**{bad.Count}/{runs.Count} runs wrong**: {bad[0].Verdict}";
    }

    /// <summary>The trap paths against the peers that also stop per hit (in-victim counting and the untraced driver are in the targets).</summary>
    private void Ratios(Fixture build)
    {
        Line("### Ratios (ProcHex median ÷ peer median)");
        Line();
        var ours = new[] { _peers.Emulated, _peers.Plain };
        Line($"| Peer | {string.Join(" | ", Threadings.SelectMany(t => ours.Select(p => $"{(p.Emulate ? "emulated" : "plain")}, {Plural(t)}")))} |");
        Line($"|---|{string.Join("|", Threadings.SelectMany(_ => ours.Select(_ => "---:")))}|");
        foreach (var peer in _peers.All.Where(p => p is not LibraryPeer && !p.Fast && p.Unavailable is null))
        {
            Line($"| {peer.Name} | {string.Join(" | ", Threadings.SelectMany(t => ours.Select(p => Ratio(build, p, peer, t))))} |");
        }

        Line();
    }

    private string Ratio(Fixture build, Peer ours, Peer peer, int threads) =>
        _results.Rate(build, ours, threads) is { } a && _results.Rate(build, peer, threads) is { Median: > 0 } b ? $"{a.Median / b.Median:0.00}×" : "—";

    private void Targets(Fixture build)
    {
        var p = _peers;
        var modes = Threadings.SelectMany(t => _results.Of(build, p.InVictim, t) ?? []).Select(r => r.Mode).OfType<string>().Distinct();
        Line("### Targets");
        Line();
        Line($"| Target | {Columns(Plural)} |");
        Line($"|---|{Rules("---")}|");
        void Row(string name, Peer ours, Peer peer, double factor) =>
            Line($"| {name} | {Columns(t => Target(build, ours, peer, factor, t))} |");
        Row("emulated ≥ 1.5× the C tracer", p.Emulated, p.CTracer, 1.5);
        Row("plain ≥ 0.9× the C tracer", p.Plain, p.CTracer, 0.9);
        Line($"| emulated ≥ 1.0× the one-stop C tracer (≥ 0.9× on 4 and 8 threads; issue 19) | {Columns(t => Target(build, p.Emulated, p.CTracerOneStop, t == 1 ? 1.0 : 0.9, t))} |");
        Row("emulated ≥ 10× gdb", p.Emulated, p.Gdb, 10);
        Row("emulated ≥ 3× ltrace", p.Emulated, p.Ltrace, 3);
        Row($"in-victim ≥ 1,000× the trap path (emulated); counted {string.Join(", ", modes.DefaultIfEmpty("—"))}", p.InVictim, p.Emulated, 1000);
        Row("in-victim ≥ 100× gdb", p.InVictim, p.Gdb, 100);
        Row("in-victim ≥ 100× kernel uprobes", p.InVictim, p.Uprobes, 100);
        Row("in-victim ≥ untraced ÷ 3 (a hit costs at most 3 uninstrumented calls)", p.InVictim, p.Untraced, 1.0 / 3);
        Line();
    }

    private string Target(Fixture build, Peer ours, Peer peer, double factor, int threads)
    {
        if (peer.Unavailable is not null)
        {
            return "n/a (skipped)";
        }

        if (_results.Of(build, peer, threads) is not { } runs)
        {
            return "n/a (not run)";
        }

        if (_results.Rate(build, ours, threads) is not { } a || _results.Rate(build, peer, threads) is not { Median: > 0 } b)
        {
            return "n/a (no result)";
        }

        var ratio = a.Median / b.Median;
        var verdict = ratio >= factor ? "met" : "**missed**";
        var caveat = runs.Any(r => !r.Exact) ? "; the peer miscounted" : "";
        return string.Create(CultureInfo.InvariantCulture, $"{ratio:0.00}× — {verdict}{caveat}");
    }

    private void Allocations(Fixtures fixtures)
    {
        Line("## Allocations on the hot path (library, whole process, Continue to Exited, after a warm-up)");
        Line();
        Line($"| Path | Build | {Columns(Plural)} |");
        Line($"|---|---|{Rules("---:")}|");
        foreach (var ours in new[] { _peers.Emulated, _peers.Plain })
        {
            foreach (var build in fixtures.Builds)
            {
                string Bytes(int threads) =>
                    _results.Of(build, ours, threads) is { } runs && Spread.Of(runs.Where(r => r.BytesPerHit is not null).Select(r => r.BytesPerHit!.Value)) is { } s
                        ? s.Format(" B/hit")
                        : "—";
                Line($"| {ours.Name} | {build.Variant.Name} | {Columns(Bytes)} |");
            }
        }

        Line();
    }

    private void LatencyTable(Bench.Latency latency)
    {
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
    }
}
