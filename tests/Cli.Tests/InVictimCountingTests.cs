using System.Buffers.Binary;
using System.Globalization;
using ProcHex.Cli.Tests.Support;
using Xunit.Abstractions;

namespace ProcHex.Cli.Tests;

/// <summary>prochex counting in the victim (issue 18 items 6 and 7).</summary>
public sealed class InVictimCountingTests(ITestOutputHelper output)
{
    /// <summary>
    /// The common real case: strlen, an IFUNC whose implementation (__strlen_evex, __strlen_avx2...) has no symbol in
    /// Debian's stripped libc, gets its extent from libc's .eh_frame, so the site is analysed instead of refused for
    /// want of a size. Counted exactly either way; in the victim where the analysis accepts the implementation (here,
    /// __strlen_evex: mov edi→eax; vpxorq, no branch into its first bytes), and a refusal must name another reason.
    /// </summary>
    /// <summary>
    /// glibc's memmove has a second way in: __mempcpy_* ends with a jump to the instruction after memmove's first, in
    /// bytes an entry jump would replace (found when `prochex run --count 'libc.so.6`mem*' -- /bin/ls` died of SIGILL).
    /// Every direct branch of the object is checked, so the site counts with a trap, the machine's own ls runs as it
    /// does untraced, and both paths count the same calls.
    /// </summary>
    [Fact]
    [Trait("Issue", "18.2")]
    public void Memcpy_and_memmove_whose_bytes_another_function_jumps_into_count_with_traps_and_the_program_runs_intact()
    {
        string[] args = ["--json", "--count", "libc.so.6`memcpy", "--count", "libc.so.6`memmove", "--count", "libc.so.6`mempcpy", "--", "/bin/ls", "-la", "/usr/bin"];
        var untraced = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("/bin/ls", ["-la", "/usr/bin"]) { RedirectStandardOutput = true })!;
        var expected = untraced.StandardOutput.ReadToEnd();
        untraced.WaitForExit();

        var inVictim = Prochex.Run(["run", .. args]);
        var trap = Prochex.Run(["run", "--count-mode", "trap", .. args]);

        Assert.True(inVictim.ExitCode == 0, inVictim.ToString());
        Assert.True(trap.ExitCode == 0, trap.ToString());
        foreach (var spec in (string[])["libc.so.6`memcpy", "libc.so.6`memmove", "libc.so.6`mempcpy"])
        {
            Assert.True(inVictim.Count(spec) > 0, $"{spec} was never called");
            Assert.Equal(trap.Count(spec), inVictim.Count(spec));
        }

        var memmove = inVictim.JsonLines.First(l => (string?)l["event"] == "planted" && (string?)l["spec"] == "libc.so.6`memmove");
        output.WriteLine($"memmove: {(string?)memmove["mode"]} {(string?)memmove["fallback"]}");
        Assert.Equal("trap", (string?)memmove["mode"]);
        Assert.Contains("branches to", (string?)memmove["fallback"], StringComparison.Ordinal);
        Assert.Contains(expected, inVictim.Stderr, StringComparison.Ordinal); // with --json the program's stdout goes to our stderr, whole
    }

    [Fact]
    [Trait("Issue", "18")]
    public void Strlen_in_a_stripped_libc_is_counted_exactly_and_not_refused_for_an_unknown_size()
    {
        var directory = Directory.CreateTempSubdirectory("prochex-strlen-").FullName;
        try
        {
            var source = Path.Combine(directory, "strlens.c");
            File.WriteAllText(source, """
                #include <stdlib.h>
                #include <string.h>
                #include <stdio.h>
                int main(int argc, char **argv) {
                    int n = argc > 1 ? atoi(argv[1]) : 1;
                    size_t total = 0;
                    for (int i = 0; i < n; i++) total += strlen(argv[0] + (i & 3));
                    printf("%zu\n", total);
                    return 0;
                }
                """);
            FixturePrograms.Compile(source, directory, "-fno-builtin"); // a call through the PLT, not gcc's inline strlen

            var result = Prochex.Run("run", "--json", "--count", "strlen", "--", Path.Combine(directory, "strlens"), "3000");

            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Equal(3000, result.Count("strlen"));
            var planted = result.JsonLines.Single(l => (string?)l["event"] == "planted");
            output.WriteLine($"strlen → {(string?)planted["implementation"]}: {(string?)planted["mode"]} {(string?)planted["fallback"]}");
            if ((string?)planted["mode"] != "in-victim")
            {
                Assert.Equal("trap", (string?)planted["mode"]);
                Assert.DoesNotContain("no sized function symbol", (string?)planted["fallback"], StringComparison.Ordinal);
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    [Trait("Issue", "18.6")]
    public void Run_counts_in_the_victim_exactly_and_says_so_and_trap_mode_counts_the_same()
    {
        var inVictim = Prochex.Run("run", "--json", "--count", "hit", "--", FixturePrograms.PathOf("hit"), "20000");
        var trap = Prochex.Run("run", "--json", "--count-mode", "trap", "--count", "hit", "--", FixturePrograms.PathOf("hit"), "20000");

        Assert.True(inVictim.ExitCode == 0, inVictim.ToString());
        Assert.Equal(20000, inVictim.Count("hit"));
        Assert.Equal("in-victim", (string?)inVictim.JsonLines[^1]["modes"]!["hit"]);
        Assert.Equal(20000, trap.Count("hit"));
        Assert.Equal("trap", (string?)trap.JsonLines[^1]["modes"]!["hit"]);
        Assert.Equal("counting with traps was asked for", (string?)trap.JsonLines.Single(l => (string?)l["event"] == "planted")["fallback"]);
    }

    /// <summary>A site the patcher refuses (a call in its first bytes) still counts every call, through the trap path, and says why.</summary>
    [Fact]
    [Trait("Issue", "18.2")]
    public void A_refused_site_counts_exactly_with_a_trap_and_says_why()
    {
        var result = Prochex.Run("run", "--json", "--count", "shape_call", "--count", "shape_pushrbp", "--", FixturePrograms.PathOf("counters"), "4", "500");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(2000, result.Count("shape_call"));
        Assert.Equal(2000, result.Count("shape_pushrbp"));
        var modes = result.JsonLines[^1]["modes"]!;
        Assert.Equal("trap", (string?)modes["shape_call"]);
        Assert.Equal("in-victim", (string?)modes["shape_pushrbp"]);
        var call = result.JsonLines.Single(l => (string?)l["event"] == "planted" && (string?)l["spec"] == "shape_call");
        Assert.Contains("is a call", (string?)call["fallback"], StringComparison.Ordinal);
    }

    /// <summary>
    /// An exec takes the counters with the old image (arenas and patched text are gone with it) and the counts stay: the
    /// one call in the first image and the five in the second add up, both in the victim; a thread that execs too.
    /// </summary>
    [Theory]
    [Trait("Issue", "18.4")]
    [InlineData("exec")]
    [InlineData("threadexec")]
    public void An_exec_keeps_what_the_old_image_counted_and_the_new_image_counts_in_the_victim_too(string program)
    {
        var result = Prochex.Run("run", "--json", "--count", "work", "--", FixturePrograms.PathOf(program), "5");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(6, result.Count("work"));
        var planted = result.JsonLines.Where(l => (string?)l["event"] == "planted").ToList();
        Assert.Equal(2, planted.Count); // once per image
        Assert.All(planted, l => Assert.Equal("in-victim", (string?)l["mode"]));
    }

    /// <summary>
    /// The guarantee no trap can give: the tracer dies by SIGKILL (no cleanup), the kernel detaches the grabbed victim
    /// with our jumps still in its text, and it runs on correctly through trampolines that are still mapped, still
    /// counting. The fixture checks every result itself and exits 3 on a wrong one; its counters keep growing.
    /// </summary>
    [Fact]
    [Trait("Issue", "18.7")]
    public void A_grabbed_victim_runs_on_correctly_after_prochex_is_killed_with_SIGKILL()
    {
        var victim = Targets.Start("counters", "4", "0", "forever");
        try
        {
            using (var prochex = Prochex.Start("attach", "--count", "shape_endbr", "--count", "shape_pushrbp", victim.Id.ToString(CultureInfo.InvariantCulture)))
            {
                Assert.Contains("in-victim", prochex.WaitForStderr("counting shape_pushrbp", TimeSpan.FromSeconds(30)), StringComparison.Ordinal);
                prochex.Signal(9);
                prochex.WaitForExit(TimeSpan.FromSeconds(30));
            }

            Assert.True(SpinWait.SpinUntil(() => Targets.Status(victim.Id, "TracerPid") == "0", TimeSpan.FromSeconds(10)), "still traced");
            var counter = CounterArena(victim.Id);
            var first = ReadCounter(victim.Id, counter);
            Assert.True(SpinWait.SpinUntil(() => ReadCounter(victim.Id, counter) > first + 100_000, TimeSpan.FromSeconds(10)), "the victim stopped counting");
            Assert.True(Targets.IsAlive(victim.Id), $"state {Targets.Status(victim.Id, "State")}");
            Assert.False(victim.HasExited, "exited");
        }
        finally
        {
            Targets.Kill(victim);
        }
    }

    /// <summary>The start of the victim's counter memfd mapping (/proc/PID/maps names it).</summary>
    private static ulong CounterArena(int pid)
    {
        var line = File.ReadLines($"/proc/{pid}/maps").First(l => l.Contains("memfd:prochex-counters", StringComparison.Ordinal));
        return ulong.Parse(line[..line.IndexOf('-', StringComparison.Ordinal)], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// The first counter of the arena at <paramref name="address"/>: its 32 thread slots, 8 KiB apart, summed (the layout
    /// of the Linux backend's CounterArena and Arch.X64's CounterTrampoline, read here from outside as a user would).
    /// </summary>
    private static ulong ReadCounter(int pid, ulong address)
    {
        const int threadSlots = 32, threadSlotBytes = 8192;
        using var memory = File.OpenHandle($"/proc/{pid}/mem", FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var bytes = new byte[8];
        var sum = 0UL;
        for (var slot = 0; slot < threadSlots; slot++)
        {
            sum += RandomAccess.Read(memory, bytes, (long)address + (slot * threadSlotBytes)) == 8 ? BinaryPrimitives.ReadUInt64LittleEndian(bytes) : 0;
        }

        return sum;
    }
}
