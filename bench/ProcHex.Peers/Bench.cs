using System.Globalization;

namespace ProcHex.Peers;

/// <summary>The finished report, and whether one of our own paths miscounted (which fails the run).</summary>
internal sealed record BenchReport(string Markdown, bool ProcHexMiscounted);

/// <summary>
/// Builds the fixture every <see cref="BuildVariant"/> way, runs every peer on every build in rounds (so contention
/// spreads over all of them), and reports.
/// </summary>
internal static class Bench
{
    public static readonly int[] Threadings = [1, 4, 8];

    public static async Task<BenchReport> RunAsync(Settings settings)
    {
        Progress($"building the fixture with gcc, {BuildVariant.All.Length} builds ({settings.Mode} mode)");
        using var fixtures = await Fixtures.BuildAsync(BuildVariant.All);
        foreach (var build in fixtures.Builds)
        {
            Progress($"build {build.Variant.Name} ({build.Variant.CommandLine}): {Fixture.Function} opens with '{build.FirstInstruction}'");
        }

        var peers = new Contenders();
        try
        {
            foreach (var skipped in peers.All.Where(p => p.Unavailable is not null))
            {
                Progress($"skipping {skipped.Name}: {skipped.Unavailable}");
            }

            var trapFixture = fixtures.Builds.First(f => f.Variant == BuildVariant.Endbr64);
            await WarmUpAsync(trapFixture, [peers.Emulated, peers.Plain, peers.InVictim], settings.WarmUpCalls);
            var results = await ThroughputAsync(settings, fixtures, peers);
            var latency = await LatencyAsync(trapFixture, peers.Emulated, peers.Gdb, settings.LatencyRuns);
            Progress("in-victim install and removal of 100 counters, 4 threads running");
            var install = await peers.InVictim.InstallLatencyAsync(trapFixture.Many, rounds: Math.Max(3, settings.LatencyRuns));
            var markdown = await Report.WriteAsync(settings, fixtures, peers, results, latency, install);
            return new BenchReport(markdown, results.ProcHexMiscounted || install.Problem is not null);
        }
        finally
        {
            await peers.DisposeAsync();
        }
    }

    /// <summary>Every runnable peer on every build and threading, <see cref="Settings.Runs"/> rounds.</summary>
    private static async Task<Results> ThroughputAsync(Settings settings, Fixtures fixtures, Contenders peers)
    {
        var results = new Results();
        var runnable = peers.All.Where(p => p.Unavailable is null).ToArray();
        foreach (var threads in Threadings)
        {
            for (var round = 1; round <= settings.Runs; round++)
            {
                foreach (var fixture in fixtures.Builds)
                {
                    foreach (var peer in runnable)
                    {
                        var calls = peer.Slow ? settings.SlowCalls : peer.Fast ? settings.Calls * Peer.FastFactor : settings.Calls;
                        var run = await RunOnceAsync(peer, fixture, calls, threads);
                        Progress(string.Create(
                            CultureInfo.InvariantCulture,
                            $"{fixture.Variant.Name}: {peer.Name}, {threads} thread(s), run {round}/{settings.Runs}: {run.HitsPerSecond:N0} hits/s, {run.Verdict}, wall {run.Wall.TotalSeconds:0.00} s"));
                        results.Add(fixture, peer, threads, run);
                    }
                }
            }
        }

        return results;
    }

    /// <summary>Only the in-victim install and removal of 100 counters, <see cref="Settings.Runs"/> rounds (<c>--install</c>).</summary>
    public static async Task<BenchReport> InstallOnlyAsync(Settings settings)
    {
        using var fixtures = await Fixtures.BuildAsync(BuildVariant.Endbr64);
        var inVictim = new LibraryPeer(emulate: true, inVictim: true);
        try
        {
            var install = await inVictim.InstallLatencyAsync(fixtures.First.Many, rounds: settings.Runs);
            var report = new System.Text.StringBuilder();
            Report.InstallTable(line => report.Append(line).Append('\n'), install);
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
        using var fixtures = await Fixtures.BuildAsync(BuildVariant.Endbr64);
        var fixture = fixtures.First;
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

    public sealed record Latency(Spread? ProcHex, Spread? GdbRun, Spread? GdbLoad, string? Skipped);

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

    public static void Progress(string message) => Console.Error.WriteLine("# " + message);
}
