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

    /// <summary>Several processes, by argument and by -p: counted as one (hits summed), each released running, each finishing correctly.</summary>
    [Fact]
    [Trait("Issue", "20.2")]
    public void Attach_to_several_processes_counts_them_all_and_releases_each_running()
    {
        var first = Targets.Start("ticker", "500");
        var second = Targets.Start("ticker", "500");
        try
        {
            var result = Prochex.Run("attach", Id(first.Id), "-p", Id(second.Id), "--count", "work", "--duration", "1", "--json");

            Assert.True(result.ExitCode == 0, result.ToString());
            int[] pids = [first.Id, second.Id];
            Assert.Equal(pids, result.JsonLines.Where(e => (string?)e["event"] == "grabbed").Select(e => (int)e["pid"]!));
            Assert.Equal(pids, result.JsonLines.Where(e => (string?)e["event"] == "released").Select(e => (int)e["pid"]!));
            Assert.InRange(result.Count("work"), 40, 600); // two tickers of about 100 calls a second, for one second
            Assert.Equal(["0", "0"], new[] { first, second }.Select(v => Targets.Status(v.Id, "TracerPid")));
            foreach (var victim in new[] { first, second })
            {
                Assert.True(victim.WaitForExit(30_000));
                Assert.Equal(0, victim.ExitCode);
                Assert.Equal("ticker: calls=500\n", victim.StandardOutput.ReadToEnd());
            }
        }
        finally
        {
            Targets.Kill(first);
            Targets.Kill(second);
        }
    }

    /// <summary>Counting ends when the last of several processes exits; each exit is reported, nothing is released.</summary>
    [Fact]
    [Trait("Issue", "20.2")]
    public void Attach_to_several_processes_ends_when_the_last_exits()
    {
        var shorter = Targets.Start("ticker", "300");
        var longer = Targets.Start("ticker", "400");
        try
        {
            var result = Prochex.Run("attach", Id(shorter.Id), Id(longer.Id), "--count", "work", "--json");

            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Equal(new[] { shorter.Id, longer.Id }.Order(), result.JsonLines.Where(e => (string?)e["event"] == "exited").Select(e => (int)e["pid"]!).Order());
            Assert.DoesNotContain(result.JsonLines, e => (string?)e["event"] == "released");
            Assert.InRange(result.Count("work"), 1, 700);
        }
        finally
        {
            Targets.Kill(shorter);
            Targets.Kill(longer);
        }
    }

    /// <summary>A PID that cannot be grabbed fails the command; the one grabbed before it is released running, its text clean.</summary>
    [Fact]
    [Trait("Issue", "20.2")]
    public void A_bad_pid_among_several_fails_and_releases_the_ones_already_grabbed()
    {
        var victim = Targets.Start("ticker", "200");
        try
        {
            var result = Prochex.Run("attach", Id(victim.Id), "999999999", "--count", "work");

            Assert.True(result.ExitCode == 1, result.ToString());
            Assert.Contains("999999999", result.Stderr, StringComparison.Ordinal);
            Assert.Contains(result.StderrLines, l => l.EndsWith($"pid {victim.Id}: released, running", StringComparison.Ordinal));
            Assert.Equal("0", Targets.Status(victim.Id, "TracerPid"));
            Assert.True(victim.WaitForExit(30_000));
            Assert.Equal(0, victim.ExitCode); // no stray trap: every call to work() returned
            Assert.Equal("ticker: calls=200\n", victim.StandardOutput.ReadToEnd());
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
