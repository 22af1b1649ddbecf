using ProcHex.Cli.Tests.Support;

namespace ProcHex.Cli.Tests;

/// <summary>
/// Issue 17, item 2: <c>--stop-at main</c> on executables without a <c>main</c> symbol stops at main, and where main
/// cannot be found the rendezvous line (text and <c>--json</c>) says where the program really stopped and why.
/// </summary>
public sealed class StopAtMainTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("prochex-cli-main-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    [Trait("Issue", "17")]
    public void The_stripped_ls_of_the_issue_stops_at_main_and_counts_malloc()
    {
        var result = Prochex.Run("run", "--json", "--stop-at", "main", "--count", "malloc", "--", "/bin/ls", "/");

        Assert.True(result.ExitCode == 0, result.ToString());
        var rendezvous = Assert.Single(result.JsonLines, e => (string?)e["event"] == "rendezvous");
        Assert.Equal("main", (string?)rendezvous["at"]);
        Assert.Null(rendezvous["requested"]);
        Assert.True(result.Count("malloc") > 0, result.ToString());
    }

    [Fact]
    [Trait("Issue", "17")]
    public void A_stripped_program_whose_main_is_in_a_library_stops_at_main()
    {
        var result = Prochex.Run("run", "--stop-at", "main", "--count", "libmainhere_work", "--", FixturePrograms.PathOf("main-in-lib"), "9");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains(result.StderrLines, l => l.EndsWith(": stopped at main", StringComparison.Ordinal));
        var row = result.Stdout.Split('\n').Single(l => l.Contains(" libmainhere_work ", StringComparison.Ordinal));
        Assert.Equal("9", row.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0]);
    }

    [Fact]
    [Trait("Issue", "17")]
    public void Where_main_cannot_be_found_the_rendezvous_reached_is_reported_with_the_reason()
    {
        var source = Path.Combine(_dir, "bare-static.c");
        var program = Path.Combine(_dir, "bare-static");
        File.WriteAllText(source, "void _start(void) { __asm__ volatile(\"mov $60, %eax; xor %edi, %edi; syscall\"); }\n");
        FixturePrograms.Run(FixturePrograms.Compiler, "-O0", "-static", "-nostdlib", "-s", "-o", program, source);

        var json = Prochex.Run("run", "--json", "--stop-at", "main", "--", program);
        var text = Prochex.Run("run", "--stop-at", "main", "--", program);

        Assert.True(json.ExitCode == 0, json.ToString());
        var rendezvous = Assert.Single(json.JsonLines, e => (string?)e["event"] == "rendezvous");
        Assert.Equal("create", (string?)rendezvous["at"]);
        Assert.Equal("main", (string?)rendezvous["requested"]);
        Assert.StartsWith("main could not be found", (string?)rendezvous["reason"], StringComparison.Ordinal);
        Assert.True(text.ExitCode == 0, text.ToString());
        Assert.Contains(text.StderrLines, l => l.Contains(": stopped at create, not main: main could not be found", StringComparison.Ordinal));
        Assert.DoesNotContain(text.StderrLines, l => l.EndsWith(": stopped at main", StringComparison.Ordinal));
    }
}
