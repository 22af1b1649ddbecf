using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using ProcHex.Cli.Tests.Support;

namespace ProcHex.Cli.Tests;

/// <summary>
/// Issue 20 item 4, <c>--interval</c>: the hits since the last interval, and the intervals add up to the summary; item 7,
/// <c>-o FILE</c>: our report goes to the file and the program's own stdout and stderr stay apart from it.
/// </summary>
public partial class IntervalAndOutputTests
{
    [Fact]
    [Trait("Issue", "20.4")]
    public void Json_intervals_add_up_to_the_summary_per_key()
    {
        var result = Prochex.Run(
            "run", "--json", "--interval", "0.1", "--count", "wild_*", "--count", "other_work", "--",
            FixturePrograms.PathOf("wild"), "100", "5", "60");

        Assert.True(result.ExitCode == 0, result.ToString());
        var lines = result.JsonLines.ToList();
        var intervals = lines.Where(e => (string?)e["event"] == "interval").ToList();
        Assert.NotEmpty(intervals);
        Assert.All(intervals, i => Assert.Equal(["event", "t", "counts"], i.Select(p => p.Key)));
        Assert.True(lines.IndexOf(intervals[^1]) < lines.FindIndex(e => (string?)e["event"] == "summary"));
        var summed = new Dictionary<string, long>();
        foreach (var (key, hits) in intervals.SelectMany(i => i["counts"]!.AsObject()))
        {
            summed[key] = summed.GetValueOrDefault(key) + (long)hits!;
        }

        var summary = WildcardTests.Counts(result.Summary);
        Assert.Equal(summary.Where(c => c.Value != 0).ToDictionary(), summed);
        Assert.Equal(500, summary["wild`wild_alpha"]);
        Assert.Equal(5, summary["other_work"]);
    }

    [Fact]
    [Trait("Issue", "20.4")]
    public void Text_intervals_are_printed_on_stdout_and_add_up_to_the_total()
    {
        var result = Prochex.Run(
            "run", "--interval", "0.1", "--count", "wild_beta", "--", FixturePrograms.PathOf("wild"), "10", "4", "60");

        Assert.True(result.ExitCode == 0, result.ToString());
        var headers = result.Stdout.Split('\n').Select(l => IntervalHeader().Match(l)).Where(m => m.Success).ToList();
        Assert.NotEmpty(headers);
        Assert.Equal(80, headers.Sum(m => long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)));
        Assert.Contains(result.Stdout.Split('\n'), l => l.StartsWith("80 hits in ", StringComparison.Ordinal));
    }

    [Fact]
    [Trait("Issue", "20.4")]
    public void Attach_prints_intervals_until_the_duration_ends_and_they_add_up_to_the_summary()
    {
        var victim = Targets.Start("ticker", "300");
        try
        {
            var result = Prochex.Run(
                "attach", victim.Id.ToString(CultureInfo.InvariantCulture), "--json", "--interval", "0.2", "--duration", "1", "--count", "work");

            Assert.True(result.ExitCode == 0, result.ToString());
            var intervals = result.JsonLines.Where(e => (string?)e["event"] == "interval").ToList();
            Assert.NotEmpty(intervals);
            Assert.Equal(result.Count("work"), intervals.Sum(i => (long?)i["counts"]!["work"] ?? 0));
            Assert.True(victim.WaitForExit(30_000));
            Assert.Equal("ticker: calls=300\n", victim.StandardOutput.ReadToEnd());
        }
        finally
        {
            Targets.Kill(victim);
        }
    }

    [Fact]
    [Trait("Issue", "20.7")]
    public void With_o_the_report_goes_to_the_file_and_the_programs_output_stays_alone_on_stdout_and_stderr()
    {
        var file = Path.Combine(Path.GetTempPath(), $"prochex-report-{Guid.NewGuid():N}.txt");
        try
        {
            var result = Prochex.Run(
                "run", "-o", file, "--count", "wild_*", "--", "/bin/sh", "-c",
                $"echo program-out; echo program-err >&2; exec {FixturePrograms.PathOf("wild")} 7");

            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Equal("program-out\n", result.Stdout);
            Assert.Equal("program-err\n", result.Stderr);
            var report = File.ReadAllText(file);
            Assert.Contains("prochex: pid ", report, StringComparison.Ordinal);
            Assert.Contains("prochex: planted wild_* on 4 functions", report, StringComparison.Ordinal);
            Assert.Contains(report.Split('\n'), l => l.StartsWith("42 hits in ", StringComparison.Ordinal));
            Assert.DoesNotContain(report.Split('\n'), l => l is "program-out" or "program-err");
            Assert.DoesNotContain("\u001b", report, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    [Trait("Issue", "20.7")]
    public void With_json_and_o_the_file_has_only_json_lines_and_the_program_keeps_its_own_streams()
    {
        var file = Path.Combine(Path.GetTempPath(), $"prochex-report-{Guid.NewGuid():N}.json");
        try
        {
            var result = Prochex.Run(
                "run", "--json", "--output", file, "--interval", "600", "--count", "wild_alpha", "--", "/bin/sh", "-c",
                $"echo program-out; echo program-err >&2; exec {FixturePrograms.PathOf("wild")} 7");

            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Equal("program-out\n", result.Stdout);
            Assert.Equal("program-err\n", result.Stderr);
            var lines = File.ReadAllLines(file).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
            Assert.Equal("created", (string?)lines[0]["event"]);
            Assert.Equal(7, (long)lines.Single(e => (string?)e["event"] == "summary")["counts"]!["wild_alpha"]!);
            Assert.Equal(7, (long)lines.Single(e => (string?)e["event"] == "interval")["counts"]!["wild_alpha"]!);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    [Trait("Issue", "20.7")]
    public void A_report_file_that_cannot_be_written_fails_before_anything_runs()
    {
        var result = Prochex.Run("run", "-o", "/nonexistent-dir/report.txt", "--count", "work", "--", FixturePrograms.PathOf("loop"), "1");

        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith("prochex: cannot write the report to /nonexistent-dir/report.txt: ", result.Stderr, StringComparison.Ordinal);
        Assert.Equal("", result.Stdout);
    }

    [GeneratedRegex("^\\[\\d+\\.\\d{3} s\\] (\\d+) hits:?$")]
    private static partial Regex IntervalHeader();
}
