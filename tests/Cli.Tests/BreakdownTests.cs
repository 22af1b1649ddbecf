using System.Globalization;
using System.Text.Json.Nodes;
using ProcHex.Cli.Tests.Support;

namespace ProcHex.Cli.Tests;

/// <summary>
/// <c>--by pid|object</c> (issue 20 item 3): the summary breaks the hits down, in a table and in <c>--json</c>'s
/// <c>"rows"</c>; the rows add up to the counts, and a function two SPECs count is counted once.
/// </summary>
public sealed class BreakdownTests
{
    [Fact]
    [Trait("Issue", "20.3")]
    public void By_pid_gives_each_function_its_hits_once_even_when_two_specs_count_it()
    {
        var result = Prochex.Run("run", "--json", "--by", "pid", "--count", "shape_endbr", "--count", "shape_[ep]*", "--", FixturePrograms.PathOf("counters"), "2", "100");

        Assert.True(result.ExitCode == 0, result.ToString());
        var pid = (int)result.JsonLines.Single(e => (string?)e["event"] == "created")["pid"]!;
        var rows = Rows(result);
        Assert.All(rows, r => Assert.Equal(pid, (int)r["pid"]!));
        Assert.All(rows, r => Assert.Equal("counters", (string?)r["object"]));
        Assert.Equal(["shape_endbr", "shape_pushrbp"], rows.Select(r => (string)r["function"]!).Order(StringComparer.Ordinal));
        Assert.All(rows, r => Assert.Equal(200, (long)r["count"]!)); // 2 threads × 100 calls: shape_endbr once, not twice
        Assert.Equal(200, result.Count("shape_endbr"));
    }

    [Fact]
    [Trait("Issue", "20.3")]
    public void By_object_sums_each_objects_functions_and_the_table_shows_them()
    {
        var json = Prochex.Run("run", "--json", "--by", "object", "--count", "shape_endbr", "--count", "libc.so.6`str*", "--", FixturePrograms.PathOf("counters"), "2", "100");

        Assert.True(json.ExitCode == 0, json.ToString());
        var rows = Rows(json);
        Assert.All(rows, r => Assert.Null(r["pid"]));
        Assert.All(rows, r => Assert.Null(r["function"]));
        Assert.Equal(200, (long)rows.Single(r => (string?)r["object"] == "counters")["count"]!);
        var libc = json.Summary["counts"]!.AsObject().Where(c => c.Key.StartsWith("libc.so.6`", StringComparison.Ordinal)).Sum(c => (long)c.Value!);
        Assert.Equal(libc, (long)rows.Single(r => (string?)r["object"] == "libc.so.6")["count"]!);

        var text = Prochex.Run("run", "--by", "object", "--count", "shape_endbr", "--", FixturePrograms.PathOf("counters"), "2", "100");
        Assert.True(text.ExitCode == 0, text.ToString());
        Assert.Matches(@"(?m)^\s+200\s+counters\s*$", text.Stdout);
    }

    /// <summary>Several processes by pid: a row each, adding up to the total.</summary>
    [Fact]
    [Trait("Issue", "20.3")]
    public void By_pid_on_several_attached_processes_gives_each_its_row()
    {
        var first = Targets.Start("ticker", "500");
        var second = Targets.Start("ticker", "500");
        try
        {
            var result = Prochex.Run("attach", Id(first.Id), Id(second.Id), "--json", "--by", "pid", "--count", "work", "--duration", "1");

            Assert.True(result.ExitCode == 0, result.ToString());
            var rows = Rows(result);
            Assert.Equal(new[] { first.Id, second.Id }.Order(), rows.Select(r => (int)r["pid"]!).Order());
            Assert.All(rows, r => Assert.Equal("work", (string?)r["function"]));
            Assert.All(rows, r => Assert.True((long)r["count"]! > 0));
            Assert.Equal(result.Count("work"), rows.Sum(r => (long)r["count"]!));
        }
        finally
        {
            Targets.Kill(first);
            Targets.Kill(second);
        }
    }

    /// <summary>By thread: a row per thread and function, named by tid and comm, counted with traps (a call counted in the process has no thread).</summary>
    [Fact]
    [Trait("Issue", "20.3")]
    public void By_thread_gives_each_thread_its_calls_with_its_name()
    {
        var result = Prochex.Run("run", "--json", "--by", "thread", "--count", "shape_endbr", "--count", "shape_[ep]*", "--", FixturePrograms.PathOf("counters"), "4", "100");

        Assert.True(result.ExitCode == 0, result.ToString());
        var pid = (int)result.JsonLines.Single(e => (string?)e["event"] == "created")["pid"]!;
        var rows = Rows(result);
        Assert.Equal(8, rows.Count); // 4 threads × 2 functions, shape_endbr once though two SPECs count it
        Assert.Equal(4, rows.Select(r => (int)r["tid"]!).Distinct().Count());
        Assert.DoesNotContain(rows, r => (int)r["tid"]! == pid); // the main thread only waits for the others
        Assert.All(rows, r => Assert.Equal((pid, "counters", 100L), ((int)r["pid"]!, (string?)r["comm"], (long)r["count"]!)));
        Assert.Equal(["pid", "tid", "comm", "object", "function", "count"], rows[0].Select(p => p.Key));
        Assert.Equal("trap", (string?)result.Summary["modes"]!["shape_endbr"]);
    }

    /// <summary>The per-thread breakdown is drawn too (issue 20 item 8): a bar per thread, labelled pid/tid and comm, with its hits.</summary>
    [Fact]
    [Trait("Issue", "20.8")]
    public void By_thread_draws_a_bar_per_thread()
    {
        var result = Prochex.Run("run", "--by", "thread", "--count", "shape_endbr", "--", FixturePrograms.PathOf("counters"), "3", "100");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("hits per thread", result.Stdout, StringComparison.Ordinal);
        var bars = result.Stdout.Split('\n').Where(l => l.Contains('█', StringComparison.Ordinal)).ToList();
        Assert.Equal(3, bars.Count);
        Assert.All(bars, bar => Assert.Matches(@"^\s*\d+/\d+ counters\s+█+ 100\s*$", bar));
    }

    [Fact]
    [Trait("Issue", "20.3")]
    public void Without_by_the_summary_line_keeps_its_shape()
    {
        var result = Prochex.Run("run", "--json", "--count", "shape_endbr", "--", FixturePrograms.PathOf("counters"), "1", "10");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Null(result.Summary["rows"]);
    }

    private static List<JsonObject> Rows(CliResult result) => [.. result.Summary["rows"]!.AsArray().Select(r => r!.AsObject())];

    private static string Id(int pid) => pid.ToString(CultureInfo.InvariantCulture);
}
