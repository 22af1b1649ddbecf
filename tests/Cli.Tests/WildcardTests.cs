using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using ProcHex.Cli.Tests.Support;

namespace ProcHex.Cli.Tests;

/// <summary>
/// Issue 20 item 1: wildcard SPECs (<c>*</c>, <c>?</c>, <c>[abc]</c>) counted per matched function, keyed
/// <c>object`function</c>, with the cost of planting them printed, and an error naming the objects searched when one
/// matches nothing.
/// </summary>
[Trait("Issue", "20.1")]
public partial class WildcardTests
{
    [Fact]
    public void A_wildcard_spec_gets_one_row_per_matched_function_with_exact_counts()
    {
        var result = Prochex.Run("run", "--count", "wild_*", "--", FixturePrograms.PathOf("wild"), "100");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("100", HitsOfRow(result, "wild`wild_alpha"));
        Assert.Equal("200", HitsOfRow(result, "wild`wild_beta"));
        Assert.Equal("300", HitsOfRow(result, "wild`wild_gamma"));
        Assert.Equal("0", HitsOfRow(result, "wild`wild_delta"));
        Assert.DoesNotContain("other_work", result.Stdout, StringComparison.Ordinal);
        Assert.Contains(result.Stdout.Split('\n'), l => l.StartsWith("600 hits in ", StringComparison.Ordinal));
        Assert.Contains(result.StderrLines, l => l.StartsWith("prochex: planted wild_* on 4 functions in 1 object (wild) in ", StringComparison.Ordinal)
            && l.Contains(" ms: ", StringComparison.Ordinal));
    }

    [Fact]
    public void Json_counts_are_keyed_by_object_and_function_for_a_wildcard_and_by_spec_otherwise()
    {
        var result = Prochex.Run(
            "run", "--json", "--count", "*wild*", "--count", "other_work", "--", FixturePrograms.PathOf("wild"), "50", "2");

        Assert.True(result.ExitCode == 0, result.ToString());
        // __wild_first is an alias of wild_alpha: one function, named by its best alias.
        Assert.Equal(
            new Dictionary<string, long>
            {
                ["wild`wild_alpha"] = 100,
                ["wild`wild_beta"] = 200,
                ["wild`wild_gamma"] = 300,
                ["wild`wild_delta"] = 0,
                ["other_work"] = 2,
            },
            Counts(result.Summary));
        var spec = result.Summary["specs"]!.AsArray().Single(s => (string?)s!["spec"] == "*wild*")!;
        Assert.Equal(600, (long)spec["hits"]!);
        Assert.Equal(4, spec["functions"]!.AsObject().Count);
        Assert.Null(result.Summary["specs"]!.AsArray().Single(s => (string?)s!["spec"] == "other_work")!["functions"]);
        var planting = Assert.Single(result.JsonLines, e => (string?)e["event"] == "planting");
        Assert.Equal("*wild*", (string?)planting["spec"]);
        Assert.Equal(4, (int)planting["functions"]!);
        Assert.Equal(["wild"], planting["objects"]!.AsArray().Select(o => (string)o!));
        Assert.Equal(4, (int)planting["in_victim"]! + (int)planting["trap"]!);
        Assert.True((double)planting["ms"]! >= 0);
    }

    [Fact]
    public void Character_classes_select_functions_by_one_character_of_a_set_a_range_or_its_complement()
    {
        var result = Prochex.Run(
            "run", "--json", "--count", "wild_[ab]*", "--count", "wild_[!a-b]*", "--count", "wild_?amma", "--",
            FixturePrograms.PathOf("wild"), "10");

        Assert.True(result.ExitCode == 0, result.ToString());
        var specs = result.Summary["specs"]!.AsArray();
        Assert.Equal(["wild`wild_alpha", "wild`wild_beta"], FunctionsOf(specs, "wild_[ab]*"));
        Assert.Equal(["wild`wild_delta", "wild`wild_gamma"], FunctionsOf(specs, "wild_[!a-b]*"));
        Assert.Equal(["wild`wild_gamma"], FunctionsOf(specs, "wild_?amma"));
        Assert.Equal(10, result.Count("wild`wild_alpha"));
        Assert.Equal(20, result.Count("wild`wild_beta"));
        Assert.Equal(30, result.Count("wild`wild_gamma"));
    }

    [Fact]
    public void A_pattern_on_a_library_loaded_later_keeps_waiting_and_matches_at_dlopen()
    {
        var result = Prochex.Run("run", "--json", "--count", "libwork.so`lib*", "--", FixturePrograms.PathOf("dlopen"), "300");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(new Dictionary<string, long> { ["libwork.so`libwork"] = 300 }, Counts(result.Summary));
        var pending = result.JsonLines.ToList().FindIndex(e => (string?)e["event"] == "pending");
        var planting = result.JsonLines.ToList().FindIndex(e => (string?)e["event"] == "planting");
        Assert.True(pending >= 0 && pending < planting, result.ToString());
        Assert.Equal(["libwork.so"], result.JsonLines[planting]["objects"]!.AsArray().Select(o => (string)o!));
    }

    [Fact]
    public void Libc_string_functions_of_a_system_binary_are_counted_per_function()
    {
        var result = Prochex.Run("run", "--json", "--count", "libc.so.6`str[c-l]*", "--", "/bin/ls", "/");

        Assert.True(result.ExitCode == 0, result.ToString());
        var counts = Counts(result.Summary);
        var planting = Assert.Single(result.JsonLines, e => (string?)e["event"] == "planting");
        Assert.Equal((int)planting["functions"]!, counts.Count);
        Assert.All(counts.Keys, k => Assert.Matches("^libc\\.so\\.6`str[c-l]", k));
        Assert.True(counts.GetValueOrDefault("libc.so.6`strlen") > 0, result.ToString()); // ls measures its names
        Assert.Equal(counts.Values.Sum(), (long)result.Summary["specs"]![0]!["hits"]!);
    }

    [Fact]
    public void Every_function_of_libc_is_planted_in_one_go_and_the_cost_is_printed()
    {
        var result = Prochex.Run("run", "--count", "libc.so.6`*", "--count-mode", "trap", "--", "/bin/true");

        Assert.True(result.ExitCode == 0, result.ToString());
        var line = Assert.Single(result.StderrLines, l => l.StartsWith("prochex: planted libc.so.6`* on ", StringComparison.Ordinal));
        var match = PlantedLine().Match(line);
        Assert.True(match.Success, line);
        Assert.True(int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) > 1000, line);
        Assert.Contains(result.Stdout.Split('\n'), l => l.Contains("libc.so.6`exit", StringComparison.Ordinal));
    }

    [Fact]
    public void A_pattern_that_matches_nothing_is_an_error_naming_the_objects_searched()
    {
        var result = Prochex.Run("run", "--json", "--count", "zz_nothing*", "--count", "wild_alpha", "--", FixturePrograms.PathOf("wild"), "3");

        Assert.True(result.ExitCode == 1, result.ToString());
        var error = Assert.Single(result.JsonLines, e => (string?)e["event"] == "error");
        Assert.Equal("zz_nothing*", (string?)error["spec"]);
        var objects = error["objects"]!.AsArray().Select(o => (string)o!).ToList();
        Assert.Contains("wild", objects);
        Assert.Contains("libc.so.6", objects);
        Assert.StartsWith("wildcard SPEC 'zz_nothing*' matched no function (objects searched: ", (string?)error["message"], StringComparison.Ordinal);
        Assert.Equal(3, result.Count("wild_alpha")); // the summary still comes, and the program ran to its end
        Assert.Equal(new Dictionary<string, long> { ["wild_alpha"] = 3 }, Counts(result.Summary));

        var text = Prochex.Run("run", "--count", "libnope.so`*", "--", FixturePrograms.PathOf("wild"), "3");

        Assert.True(text.ExitCode == 1, text.ToString());
        Assert.Contains(text.StderrLines, l => l.StartsWith("prochex: error: wildcard SPEC 'libnope.so`*' matched no function (libnope.so was never loaded; objects loaded: ", StringComparison.Ordinal)
            && l.Contains("libc.so.6", StringComparison.Ordinal));
    }

    [Fact]
    public void The_help_describes_wildcards_intervals_the_report_file_and_where_each_stream_goes()
    {
        foreach (var command in (string[])["run", "attach"])
        {
            var help = Prochex.Run(command, "--help");

            Assert.True(help.ExitCode == 0, help.ToString());
            var text = string.Join(' ', help.Stdout.Split((char[])['\n', ' '], StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains("[abc], [a-z], [!abc] classes", text, StringComparison.Ordinal);
            Assert.Contains("--interval <SECONDS>", text, StringComparison.Ordinal);
            Assert.Contains("-o, --output <FILE>", text, StringComparison.Ordinal);
            Assert.Contains("Output: without -o, events", text, StringComparison.Ordinal);
            Assert.Contains("the program keeps stdout and stderr to itself", text, StringComparison.Ordinal);
        }
    }

    internal static Dictionary<string, long> Counts(JsonObject summary) =>
        summary["counts"]!.AsObject().ToDictionary(p => p.Key, p => (long)p.Value!);

    private static List<string> FunctionsOf(JsonArray specs, string spec) =>
        [.. specs.Single(s => (string?)s!["spec"] == spec)!["functions"]!.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal)];

    /// <summary>The HITS column of the table row whose WHERE is <paramref name="where"/>.</summary>
    private static string HitsOfRow(CliResult result, string where)
    {
        var row = result.Stdout.Split('\n').Single(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains(where));
        return row.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];
    }

    [GeneratedRegex("^prochex: planted libc\\.so\\.6`\\* on (\\d+) functions in \\d+ objects? \\(libc\\.so\\.6.*\\) in \\d+\\.\\d ms: \\d+ in-victim, \\d+ trap$")]
    private static partial Regex PlantedLine();
}
