using System.Text.Json.Nodes;
using ProcHex.Cli.Tests.Support;

namespace ProcHex.Cli.Tests;

/// <summary>Issue 21 item 3: <c>--metrics</c> prints the final values of the ProcHex instruments.</summary>
public class MetricsTests
{
    [Fact]
    [Trait("Issue", "21")]
    public void Run_json_metrics_is_one_metrics_object_with_the_hits_the_stops_and_no_victim_left()
    {
        var result = Prochex.Run("run", "--json", "--metrics", "--count-mode", "trap", "--count", "work", "--", FixturePrograms.PathOf("loop"), "3");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("metrics", (string?)result.JsonLines[^1]["event"]);
        var metrics = Assert.Single(result.JsonLines, l => (string?)l["event"] == "metrics");
        var instruments = metrics["instruments"]!.AsArray().Select(i => i!.AsObject()).ToList();
        Assert.Equal(3, Value(instruments, "prochex.breakpoint.hits", "prochex.breakpoint.mode", "trap"));
        Assert.Equal(1, Value(instruments, "prochex.stops", "prochex.stop.reason", "exited"));
        Assert.True(Value(instruments, "prochex.step_overs", "prochex.step_over.kind", "emulated") >= 3);
        Assert.All(instruments.Where(i => (string?)i["name"] == "prochex.victims"), v => Assert.Equal(0, (long)v["value"]!));
        Assert.Equal(0, (long)instruments.Single(i => (string?)i["name"] == "prochex.notifications.queued")["value"]!);
        var delay = instruments.Single(i => (string?)i["name"] == "prochex.owner.queue_delay");
        Assert.Equal("s", (string?)delay["unit"]);
        Assert.True((long)delay["count"]! >= 1);
    }

    [Fact]
    [Trait("Issue", "18.5")]
    public void Calls_counted_in_the_victim_are_breakpoint_hits_of_mode_in_victim()
    {
        var result = Prochex.Run("run", "--json", "--metrics", "--count", "work", "--", FixturePrograms.PathOf("loop"), "3");

        Assert.True(result.ExitCode == 0, result.ToString());
        var metrics = Assert.Single(result.JsonLines, l => (string?)l["event"] == "metrics");
        var instruments = metrics["instruments"]!.AsArray().Select(i => i!.AsObject()).ToList();
        Assert.Equal(3, Value(instruments, "prochex.breakpoint.hits", "prochex.breakpoint.mode", "in_victim"));
        Assert.Equal(0, Value(instruments, "prochex.breakpoint.hits", "prochex.breakpoint.mode", "trap"));
    }

    [Fact]
    [Trait("Issue", "21")]
    public void Attach_metrics_prints_a_table_of_the_instruments_after_the_counts()
    {
        var victim = Targets.Start("sleeper");
        try
        {
            var result = Prochex.Run("attach", "--metrics", "--duration", "0.5", victim.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));

            Assert.True(result.ExitCode == 0, result.ToString());
            var metricsTable = result.Stdout[result.Stdout.IndexOf("METRIC", StringComparison.Ordinal)..];
            Assert.Contains("prochex.stops", metricsTable, StringComparison.Ordinal);
            Assert.Matches(@"prochex\.victims\s+prochex\.victim\.state=running\s+0 \{victim\}", metricsTable);
            Assert.Matches(@"prochex\.owner\.queue_delay\s+\d+ measured, mean [0-9.]+ s, max [0-9.]+ s", metricsTable);
        }
        finally
        {
            Targets.Kill(victim);
        }
    }

    [Fact]
    [Trait("Issue", "21")]
    public void Without_metrics_nothing_about_instruments_is_printed()
    {
        var result = Prochex.Run("run", "--json", "--count", "work", "--", FixturePrograms.PathOf("loop"), "1");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.DoesNotContain(result.JsonLines, l => (string?)l["event"] == "metrics");
    }

    private static long Value(List<JsonObject> instruments, string name, string tag, string value) =>
        (long)instruments.Single(i => (string?)i["name"] == name && (string?)i["tags"]![tag] == value)["value"]!;
}
