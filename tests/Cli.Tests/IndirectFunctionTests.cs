using System.Globalization;
using ProcHex.Cli.Tests.Support;

namespace ProcHex.Cli.Tests;

/// <summary>
/// Issue 17, item 1, through the CLI: <c>--count</c> on a GNU indirect function (glibc's strlen, memcpy, memset,
/// strcmp; a fixture library's pick) counts every call the program makes, and says where: <c>strlen → libc.so.6`...</c>.
/// </summary>
[Trait("Issue", "17.1")]
public class IndirectFunctionTests
{
    private static readonly string[] Specs = ["strlen", "memcpy", "memset", "strcmp", "pick"];

    private static string[] CountArgs => [.. Specs.SelectMany(s => new[] { "--count", s })];

    [Fact]
    public void Run_counts_every_call_of_each_indirect_function_and_shows_the_implementation()
    {
        var result = Prochex.Run(["run", "--json", .. CountArgs, "--", FixturePrograms.PathOf("ifunc"), "1000"]);

        Assert.True(result.ExitCode == 0, result.ToString());
        foreach (var spec in Specs)
        {
            Assert.True(result.Count(spec) == 1000, $"{spec}: {result.Count(spec)}\n{result}");
            var planted = Assert.Single(result.JsonLines, e => (string?)e["event"] == "planted" && (string?)e["spec"] == spec);
            var implementation = (string?)planted["implementation"];
            Assert.NotNull(implementation);
            Assert.Equal($"{spec} → {implementation}", (string?)planted["location"]);
        }

        var pick = Assert.Single(result.JsonLines, e => (string?)e["event"] == "planted" && (string?)e["spec"] == "pick");
        Assert.Equal("libifunc.so`pick_a", (string?)pick["implementation"]);
        Assert.StartsWith("libc.so.6`", (string?)Assert.Single(result.JsonLines, e => (string?)e["event"] == "planted" && (string?)e["spec"] == "strlen")["implementation"], StringComparison.Ordinal);
    }

    [Fact]
    public void The_text_table_names_the_function_and_where_its_calls_go()
    {
        var result = Prochex.Run("run", "--stop-at", "main", "--count", "strlen", "--count", "pick", "--", FixturePrograms.PathOf("ifunc"), "250");

        Assert.True(result.ExitCode == 0, result.ToString());
        var strlen = result.Stdout.Split('\n').Single(l => l.Contains(" strlen ", StringComparison.Ordinal));
        Assert.Equal("250", strlen.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0]);
        Assert.Contains("strlen → libc.so.6`", strlen, StringComparison.Ordinal);
        Assert.Contains(result.StderrLines, l => l.Contains("counting pick at pick → libifunc.so`pick_a (0x", StringComparison.Ordinal));
    }

    [Fact]
    public void Attach_to_a_process_that_already_resolved_them_counts_every_later_call()
    {
        // It has called strlen, memcpy, memset and pick once (bound GOT slots), not strcmp, and blocks reading stdin.
        using var victim = Targets.StartWithInput("ifunc", "700", "wait");
        try
        {
            Assert.Equal("ready", victim.StandardOutput.ReadLine());
            using var prochex = Prochex.Start(["attach", victim.Id.ToString(CultureInfo.InvariantCulture), "--json", .. CountArgs]);
            prochex.WaitForStdout("\"event\":\"planted\",\"spec\":\"pick\"", TimeSpan.FromSeconds(30));
            victim.StandardInput.Write('x');
            victim.StandardInput.Flush();
            var result = prochex.WaitForExit(TimeSpan.FromSeconds(60));

            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.All(Specs, s => Assert.True(result.Count(s) == 700, $"{s}: {result.Count(s)}\n{result}"));
            Assert.True(victim.WaitForExit(30_000));
            Assert.Equal(0, victim.ExitCode);
        }
        finally
        {
            Targets.Kill(victim);
        }
    }
}
