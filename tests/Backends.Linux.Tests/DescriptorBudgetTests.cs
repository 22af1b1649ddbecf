using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using ProcHex.Backends.Linux.Tests.Support;

namespace ProcHex.Backends.Linux.Tests;

/// <summary>
/// Issue 22 item 2, the descriptor budget: every victim held for control keeps one descriptor (/proc/PID/mem), so the
/// backend raises the soft RLIMIT_NOFILE to the hard one when it starts. Proved in a child host (this test assembly
/// run as a program, <see cref="DescriptorBudgetHost"/>) that lowers its own soft limit first: the lowered limit is
/// the child's alone, the test host's stays as it is.
/// </summary>
[Trait("Backend", "Linux")]
[Trait("Issue", "22")]
public sealed partial class DescriptorBudgetTests
{
    private const int LoweredSoftLimit = 96;
    private const int Victims = 150;

    [Fact]
    public void More_victims_than_a_lowered_soft_limit_all_run_to_their_end_with_every_hit_counted()
    {
        var (exit, output) = RunHost(LoweredSoftLimit, Victims);

        var summary = Summary().Match(output);
        Assert.True(exit == 0 && summary.Success, $"exit {exit}:\n{output}");
        Assert.Equal(Victims, Number(summary, "exited"));
        Assert.Equal(3 * Victims, Number(summary, "hits"));
        Assert.Equal(LoweredSoftLimit, Number(summary, "before"));
        Assert.Equal(HardLimit(), Number(summary, "after"));
        Assert.True(Number(summary, "fds") > LoweredSoftLimit, $"only {Number(summary, "fds")} descriptors were open with all {Victims} held:\n{output}");
        Assert.Contains($"log: raised the soft limit on open files (RLIMIT_NOFILE) from {LoweredSoftLimit} to the hard limit {HardLimit()}", output, StringComparison.Ordinal);
    }

    private static (int Exit, string Output) RunHost(int softLimit, int victims)
    {
        var assembly = typeof(DescriptorBudgetHost).Assembly.Location;
        var info = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])[assembly, DescriptorBudgetHost.Verb, FixturePrograms.PathOf("loop"), victims.ToString(CultureInfo.InvariantCulture), softLimit.ToString(CultureInfo.InvariantCulture)])
        {
            info.ArgumentList.Add(a);
        }

        using var host = Process.Start(info)!;
        var stdout = host.StandardOutput.ReadToEndAsync();
        var stderr = host.StandardError.ReadToEndAsync();
        Assert.True(host.WaitForExit(TimeSpan.FromMinutes(3)), "the child host did not finish in 3 minutes");
        return (host.ExitCode, stdout.Result + stderr.Result);
    }

    private static long HardLimit()
    {
        var line = File.ReadLines("/proc/self/limits").Single(l => l.StartsWith("Max open files", StringComparison.Ordinal));
        return long.Parse(line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    }

    private static long Number(Match match, string group) => long.Parse(match.Groups[group].Value, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"victims [0-9]+ exited (?<exited>[0-9]+) hits (?<hits>[0-9]+) soft (?<before>[0-9]+) -> (?<after>[0-9]+) fds (?<fds>[0-9]+)")]
    private static partial Regex Summary();
}
