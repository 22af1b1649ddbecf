using System.Globalization;
using ProcHex.Cli.Tests.Support;

namespace ProcHex.Cli.Tests;

/// <summary><c>prochex attach</c> and <c>inspect</c> on running programs, and what signals do to prochex.</summary>
public class AttachTests
{
    [Fact]
    public void Attach_counts_then_releases_and_the_program_finishes_correctly_untraced()
    {
        var victim = Targets.Start("ticker", "300");
        try
        {
            var result = Prochex.Run("attach", Id(victim.Id), "--count", "work", "--duration", "1", "--json");

            Assert.True(result.ExitCode == 0, result.ToString());
            var hits = result.Count("work");
            Assert.InRange(hits, 20, 300);
            Assert.Contains(result.JsonLines, e => (string?)e["event"] == "released" && (string?)e["how"] == "detached");
            Assert.Equal("0", Targets.Status(victim.Id, "TracerPid"));
            Assert.False(Targets.Status(victim.Id, "State")!.StartsWith('T'));

            Assert.True(victim.WaitForExit(30_000));
            Assert.Equal(0, victim.ExitCode);
            Assert.Equal("ticker: calls=300\n", victim.StandardOutput.ReadToEnd());
        }
        finally
        {
            Targets.Kill(victim);
        }
    }

    [Fact]
    public void Attach_ends_when_the_process_exits_and_reports_how()
    {
        var victim = Targets.Start("ticker", "300");
        try
        {
            var result = Prochex.Run("attach", Id(victim.Id), "--count", "work", "--json");

            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Equal(0, (int)result.Summary["exit"]!["code"]!);
            Assert.InRange(result.Count("work"), 1, 300);
            Assert.Contains(result.JsonLines, e => (string?)e["event"] == "exited");
            Assert.DoesNotContain(result.JsonLines, e => (string?)e["event"] == "released");
        }
        finally
        {
            Targets.Kill(victim);
        }
    }

    [Fact]
    public void Sigterm_during_attach_releases_the_process_running_and_prints_the_table()
    {
        var victim = Targets.Start("sleeper");
        try
        {
            using var prochex = Prochex.Start("attach", Id(victim.Id), "--count", "work");
            prochex.WaitForStderr("counting work", TimeSpan.FromSeconds(30));
            Thread.Sleep(300);
            prochex.Signal(15);
            var result = prochex.WaitForExit(TimeSpan.FromSeconds(30));

            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Contains(" work ", result.Stdout, StringComparison.Ordinal);
            Assert.Contains(result.StderrLines, l => l.EndsWith("released, running", StringComparison.Ordinal));
            Assert.Equal("0", Targets.Status(victim.Id, "TracerPid"));
            Assert.False(Targets.Status(victim.Id, "State")!.StartsWith('T'));
            // Still running with clean text: it keeps calling work() without dying of a stray trap.
            Thread.Sleep(300);
            Assert.True(Targets.IsAlive(victim.Id));
            Assert.False(victim.HasExited);
        }
        finally
        {
            Targets.Kill(victim);
        }
    }

    [Fact]
    public void Sigterm_during_run_kills_the_created_victim_and_exits_143()
    {
        using var prochex = Prochex.Start("run", "--count", "work", "--", FixturePrograms.PathOf("sleeper"));
        var pid = Prochex.PidIn(prochex.WaitForStderr(": created ", TimeSpan.FromSeconds(30)));
        prochex.WaitForStderr("counting work", TimeSpan.FromSeconds(30));
        prochex.Signal(15);
        var result = prochex.WaitForExit(TimeSpan.FromSeconds(30));

        Assert.True(result.ExitCode == 128 + 15, result.ToString());
        Assert.True(Targets.WaitGone(pid, TimeSpan.FromSeconds(5)), $"pid {pid} outlived prochex");
    }

    [Fact]
    public void A_created_victim_never_outlives_a_killed_prochex()
    {
        using var prochex = Prochex.Start("run", "--count", "work", "--", FixturePrograms.PathOf("sleeper"));
        var pid = Prochex.PidIn(prochex.WaitForStderr(": created ", TimeSpan.FromSeconds(30)));
        prochex.WaitForStderr("counting work", TimeSpan.FromSeconds(30));
        prochex.Signal(9);
        prochex.WaitForExit(TimeSpan.FromSeconds(30));

        Assert.True(Targets.WaitGone(pid, TimeSpan.FromSeconds(5)), $"pid {pid} outlived prochex");
    }

    [Fact]
    public void Inspect_lists_the_loaded_objects_and_symbolized_threads_without_stopping_the_process()
    {
        var victim = Targets.Start("sleeper");
        try
        {
            var result = Prochex.InspectAsleep(victim.Id);

            Assert.True(result.ExitCode == 0, result.ToString());
            var report = Assert.Single(result.JsonLines);
            Assert.Equal("inspect", (string?)report["event"]);
            var paths = report["objects"]!.AsArray().Select(o => (string)o!["path"]!).ToList();
            Assert.Equal(FixturePrograms.PathOf("sleeper"), paths[0]);
            Assert.Contains(paths, p => p.EndsWith("/libc.so.6", StringComparison.Ordinal));
            Assert.All(report["objects"]!.AsArray(), o => Assert.StartsWith("0x", (string)o!["base"]!, StringComparison.Ordinal));
            var thread = Assert.Single(report["threads"]!.AsArray());
            Assert.Equal(victim.Id, (int)thread!["tid"]!);
            Assert.StartsWith("0x", (string)thread["pc"]!, StringComparison.Ordinal);
            Assert.Matches(@"^libc\.so\.6(`\w+)?\+0x[0-9a-f]+$", (string)thread["where"]!); // asleep in libc
            Assert.Equal("0", Targets.Status(victim.Id, "TracerPid"));
            Assert.False(Targets.Status(victim.Id, "State")!.StartsWith('T'));
        }
        finally
        {
            Targets.Kill(victim);
        }
    }

    private static string Id(int pid) => pid.ToString(CultureInfo.InvariantCulture);
}
