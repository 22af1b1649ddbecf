using System.Text.Json;
using System.Text.Json.Nodes;
using ProcHex.Cli.Tests.Support;
using Snapshooter.Xunit;

namespace ProcHex.Cli.Tests;

/// <summary>--json: every stdout line is one JSON object; the sequence of events and their fields is snapshotted.</summary>
public class JsonShapeTests
{
    [Fact]
    public void Run_json_lines_parse_and_keep_their_shape()
    {
        var result = Prochex.Run(
            "run", "--json", "--count", "work", "--count", "libwork.so`libwork", "--", FixturePrograms.PathOf("dlopen"), "3");

        Assert.True(result.ExitCode == 0, result.ToString());
        var lines = result.JsonLines;
        Assert.Equal(result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length, lines.Count);
        Assert.Equal("summary", (string?)lines[^1]["event"]);
        Assert.Equal(3, result.Count("work"));
        Snapshot.Match(lines.Select(Shape).ToList());
    }

    /// <summary>
    /// Issue 20: a wildcard SPEC's functions as counts keys and in specs, its planting event, and the error of a pattern
    /// that matched nothing.
    /// </summary>
    [Fact]
    public void Wildcard_json_lines_keep_their_shape()
    {
        var result = Prochex.Run(
            "run", "--json", "--count", "wild_[ab]*", "--count", "zz_none*", "--", FixturePrograms.PathOf("wild"), "3");

        Assert.True(result.ExitCode == 1, result.ToString());
        var lines = result.JsonLines;
        Assert.Equal("summary", (string?)lines[^1]["event"]);
        Assert.Equal(6, result.Count("wild`wild_beta"));
        Snapshot.Match(lines.Select(Shape).ToList());
    }

    [Fact]
    public void Inspect_json_keeps_its_shape()
    {
        var victim = Targets.Start("sleeper");
        try
        {
            var result = Prochex.InspectAsleep(victim.Id);

            Assert.True(result.ExitCode == 0, result.ToString());
            Snapshot.Match(result.JsonLines.Select(Shape).ToList());
        }
        finally
        {
            Targets.Kill(victim);
        }
    }

    /// <summary>
    /// An event with its values replaced by their kinds, except the event name and the few values that are the same
    /// on every machine; arrays keep the shape of their first element.
    /// </summary>
    private static Dictionary<string, object?> Shape(JsonObject line)
    {
        var shape = new Dictionary<string, object?>();
        foreach (var (key, value) in line)
        {
            shape[key] = key is "event" or "kind" or "at" or "how" or "status" ? (object?)(string?)value : ShapeOf(value);
        }

        return shape;
    }

    private static object? ShapeOf(JsonNode? node) => node switch
    {
        null => "null",
        JsonObject o => o.ToDictionary(p => p.Key, p => ShapeOf(p.Value)),
        JsonArray a => a.Count == 0 ? new List<object?>() : new List<object?> { ShapeOf(a[0]) },
        JsonValue v => v.GetValueKind() switch
        {
            JsonValueKind.String => "string",
            JsonValueKind.Number => "number",
            JsonValueKind.True or JsonValueKind.False => "bool",
            _ => "?",
        },
        _ => "?",
    };
}
