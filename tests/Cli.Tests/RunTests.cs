using ProcHex.Cli.Tests.Support;

namespace ProcHex.Cli.Tests;

/// <summary><c>prochex run</c> on real programs: exact counts, exit statuses, lifecycle lines.</summary>
public class RunTests
{
    [Fact]
    public void Counts_every_call_of_an_executable_function_and_prints_the_table()
    {
        var result = Prochex.Run("run", "--count", "work", "--", FixturePrograms.PathOf("loop"), "1000");

        Assert.True(result.ExitCode == 0, result.ToString());
        var row = result.Stdout.Split('\n').Single(l => l.Contains(" work ", StringComparison.Ordinal));
        Assert.Equal("1000", row.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0]);
        Assert.Contains("loop`work", row, StringComparison.Ordinal);
        Assert.Contains(result.StderrLines, l => l.Contains(": created ", StringComparison.Ordinal));
        Assert.Contains(result.StderrLines, l => l.EndsWith(": exited with status 0", StringComparison.Ordinal));
    }

    [Fact]
    public void Counts_exactly_the_calls_made_from_four_threads()
    {
        var result = Prochex.Run("run", "--json", "--count", "work", "--", FixturePrograms.PathOf("threads"), "4000");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(4000, result.Count("work"));
    }

    [Fact]
    public void A_spec_on_a_library_loaded_with_dlopen_stays_pending_until_it_loads_and_counts_exactly()
    {
        var result = Prochex.Run(
            "run", "--json", "--count", "libwork.so`libwork", "--count", "work", "--", FixturePrograms.PathOf("dlopen"), "500");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(500, result.Count("libwork.so`libwork"));
        Assert.Equal(500, result.Count("work"));
        var events = result.JsonLines.Select(e => (string)e["event"]!).ToList();
        var pending = events.IndexOf("pending");
        var dlopen = result.JsonLines.ToList().FindIndex(e => (string?)e["kind"] == "dlactivity");
        var planted = result.JsonLines.ToList().FindIndex(e => (string?)e["event"] == "planted" && (string?)e["spec"] == "libwork.so`libwork");
        Assert.True(pending >= 0 && pending < dlopen && dlopen < planted, result.ToString());
    }

    [Fact]
    public void A_fork_is_reported_and_only_the_parents_calls_are_counted()
    {
        var result = Prochex.Run("run", "--json", "--count", "work", "--", FixturePrograms.PathOf("fork"), "4");

        Assert.Equal(0, result.ExitCode);
        var fork = Assert.Single(result.JsonLines, e => (string?)e["event"] == "fork");
        Assert.Equal(result.JsonLines[0]["pid"]?.GetValue<int>(), fork["pid"]?.GetValue<int>());
        var summary = result.JsonLines[^1];
        Assert.Equal(4, summary["counts"]?["work"]?.GetValue<int>());
    }

    [Fact]
    public void Counting_goes_on_in_the_new_image_after_an_exec()
    {
        var result = Prochex.Run("run", "--json", "--count", "work", "--", FixturePrograms.PathOf("exec"), "5");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(1 + 5, result.Count("work"));
        var exec = Assert.Single(result.JsonLines, e => (string?)e["event"] == "exec");
        Assert.Equal(FixturePrograms.PathOf("loop"), (string?)exec["path"]);
    }

    [Fact]
    public void Stopping_at_main_still_counts_every_call_made_from_main()
    {
        var result = Prochex.Run("run", "--json", "--stop-at", "main", "--count", "a.out`work", "--", FixturePrograms.PathOf("loop"), "25");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(25, result.Count("a.out`work"));
        Assert.Contains(result.JsonLines, e => (string?)e["event"] == "rendezvous" && (string?)e["at"] == "main");
    }

    [Fact]
    public void Exits_with_the_programs_own_status()
    {
        var result = Prochex.Run("run", "--count", "work", "--", FixturePrograms.PathOf("loop"), "3", "7");

        Assert.True(result.ExitCode == 7, result.ToString());
    }

    [Fact]
    public void Exits_128_plus_the_signal_that_killed_the_program()
    {
        var result = Prochex.Run("run", "--json", "--count", "work", "--", FixturePrograms.PathOf("crash"));

        Assert.True(result.ExitCode == 128 + 11, result.ToString());
        Assert.Equal(1, result.Count("work"));
        Assert.Equal(11, (int)result.Summary["exit"]!["signal"]!);
        Assert.Contains(result.JsonLines, e => (string?)e["event"] == "killed" && (int?)e["signal"] == 11);
    }

    [Fact]
    public void The_readme_command_counts_malloc_and_free_in_ls()
    {
        var result = Prochex.Run("run", "--count", "malloc", "--count", "free", "--", "/bin/ls", "/");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("proc", result.Stdout, StringComparison.Ordinal);
        var malloc = result.Stdout.Split('\n').Single(l => l.Contains(" malloc ", StringComparison.Ordinal));
        Assert.True(long.Parse(malloc.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0], System.Globalization.CultureInfo.InvariantCulture) > 0, result.ToString());
        Assert.Contains("libc.so.6`malloc", malloc, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_dash_dash_every_word_from_the_program_on_is_the_programs_own_options_too_issue_17_item_7()
    {
        // -v and -c are prochex options (--verbose, --count): after PROGRAM they belong to the program.
        var result = Prochex.Run("run", "--count", "work", "/bin/echo", "-l", "-v", "-c", "x", "--", "--bogus");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("-l -v -c x -- --bogus", result.Stdout.Split('\n')[0]);
        Assert.Contains(result.StderrLines, l => l.EndsWith(": created /bin/echo -l -v -c x -- --bogus", StringComparison.Ordinal));
    }

    [Fact]
    public void After_dash_dash_a_program_may_start_with_a_dash_issue_17_item_7()
    {
        var result = Prochex.Run("run", "--", "-no-such-program-with-a-dash");

        Assert.Equal(1, result.ExitCode);
        Assert.Equal(["prochex: failed to execute -no-such-program-with-a-dash: No such file or directory"], result.StderrLines);
    }

    [Fact]
    public void The_fake_backend_runs_its_catalogue_programs()
    {
        var result = Prochex.Run("--backend", "fake", "run", "--json", "--count", "work", "--", "/usr/libexec/prochex-test/loop", "5", "3");

        Assert.True(result.ExitCode == 3, result.ToString());
        Assert.Equal(5, result.Count("work"));
    }
}
