using System.Globalization;
using System.Text.Json.Nodes;
using ProcHex.Cli.Tests.Support;

namespace ProcHex.Cli.Tests;

/// <summary>
/// Issue 23, part 1: a SPEC no image has defined yet stays pending through exec, so counting "the program" works
/// through env, shell wrappers and chains of them; counts are per SPEC over the whole run; a SPEC never found is a
/// warning and "not found" in the summary, and --strict fails on one the final image lacks.
/// </summary>
public sealed class ExecChainTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("prochex-wrappers-").FullName;

    /// <summary>The victim's own count of calls to work (common.h's <c>calls</c>), read from its memory.</summary>
    private static long CallsOf(int pid, string program)
    {
        var path = FixturePrograms.PathOf(program);
        var bias = File.ReadLines($"/proc/{pid}/maps")
            .Select(line => line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length == 6 && f[5] == path)
            .Select(f => ulong.Parse(f[0].Split('-')[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture)
                - ulong.Parse(f[2], NumberStyles.HexNumber, CultureInfo.InvariantCulture))
            .First();
        using var memory = File.OpenHandle($"/proc/{pid}/mem");
        Span<byte> word = stackalloc byte[8];
        _ = RandomAccess.Read(memory, word, (long)(bias + FixturePrograms.Symbol(program, "calls")));
        return BitConverter.ToInt64(word);
    }

    private static string Hit => FixturePrograms.PathOf("hit");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Pending_across_exec_counts_through_usr_bin_env_and_exits_with_the_programs_status()
    {
        var result = Prochex.Run("run", "--json", "--count", "hit", "--", "/usr/bin/env", Hit, "7", "3");

        Assert.True(result.ExitCode == 3, result.ToString());
        Assert.Equal(7, result.Count("hit"));
        Assert.Equal([Hit], Execs(result));
        var spec = Spec(result, "hit");
        Assert.Equal("planted", (string?)spec["status"]);
        Assert.Equal("hit`hit", (string?)spec["location"]);
        Assert.Equal(["/usr/bin/env", Hit], Images(spec));
        var planted = Assert.Single(result.JsonLines, e => (string?)e["event"] == "planted");
        Assert.Equal(Hit, (string?)planted["image"]);
    }

    [Fact]
    public void Pending_across_exec_counts_through_a_sh_wrapper_that_ends_in_exec()
    {
        var wrapper = Script("wrapper", "exec \"$@\"");

        var result = Prochex.Run("run", "--json", "--count", "hit", "--", wrapper, Hit, "5");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(5, result.Count("hit"));
        Assert.Equal([Hit], Execs(result));
    }

    [Fact]
    public void Pending_across_exec_counts_through_a_two_level_wrapper_chain_and_env()
    {
        var inner = Script("inner", "exec /usr/bin/env \"$@\"");
        var outer = Script("outer", $"exec '{inner}' \"$@\"");

        var result = Prochex.Run("run", "--json", "--count", "hit", "--", outer, Hit, "4", "9");

        Assert.True(result.ExitCode == 9, result.ToString());
        Assert.Equal(4, result.Count("hit"));
        // The kernel runs a script as its interpreter: each exec brings the interpreter's image, then env's, then hit's.
        var execs = Execs(result);
        Assert.Equal(3, execs.Count);
        Assert.Equal("/usr/bin/env", execs[1]);
        Assert.Equal(Hit, execs[2]);
        Assert.Equal(Hit, Images(Spec(result, "hit"))[^1]);
    }

    [Fact]
    public void Pending_across_exec_counts_a_program_a_wrapper_finds_on_PATH()
    {
        var wrapper = Script("shim", $"PATH='{FixturePrograms.Dir}':$PATH; export PATH; exec hit \"$@\"");

        var result = Prochex.Run("run", "--json", "--count", "hit", "--", wrapper, "6");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(6, result.Count("hit"));
        Assert.Equal([Hit], Execs(result));
    }

    [Fact]
    public void A_spec_in_the_first_image_and_the_last_is_counted_in_both_and_summed_per_spec()
    {
        // exec calls work() once, then execs loop 5, which calls it 5 times: one SPEC, two images, one count.
        var result = Prochex.Run("run", "--json", "--count", "work", "--count", "malloc", "--", "/usr/bin/env", FixturePrograms.PathOf("exec"), "5");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(1 + 5, result.Count("work"));
        var images = result.JsonLines
            .Where(e => (string?)e["event"] == "planted" && (string?)e["spec"] == "work")
            .Select(e => (string?)e["image"])
            .ToList();
        Assert.Equal([FixturePrograms.PathOf("exec"), FixturePrograms.PathOf("loop")], images);

        // malloc is in libc from the first image (env) on: planted in each of the three images, counted over all.
        var malloc = result.JsonLines.Where(e => (string?)e["event"] == "planted" && (string?)e["spec"] == "malloc").ToList();
        Assert.Equal(3, malloc.Count);
        Assert.All(malloc, e => Assert.Equal("libc.so.6`malloc", (string?)e["location"]));
        Assert.Equal("/usr/bin/env", (string?)malloc[0]["image"]);
        Assert.Equal("planted", (string?)Spec(result, "malloc")["status"]);
    }

    [Fact]
    public void A_spec_never_found_is_a_warning_and_not_found_with_the_images_searched_and_the_program_status_stands()
    {
        var result = Prochex.Run("run", "--json", "--count", "no_such_symbol", "--count", "hit", "--", "/usr/bin/env", Hit, "2", "5");

        Assert.True(result.ExitCode == 5, result.ToString());
        Assert.Equal(2, result.Count("hit"));
        Assert.Equal(0, result.Count("no_such_symbol"));
        var spec = Spec(result, "no_such_symbol");
        Assert.Equal("not found", (string?)spec["status"]);
        Assert.Equal(["/usr/bin/env", Hit], Images(spec));
        var warning = Assert.Single(result.JsonLines, e => (string?)e["event"] == "warning");
        Assert.Equal("no_such_symbol", (string?)warning["spec"]);
        Assert.Contains("not found in any image", (string?)warning["message"], StringComparison.Ordinal);
        Assert.True(result.JsonLines.ToList().IndexOf(warning) < result.JsonLines.Count - 1, "the warning comes before the summary");
    }

    [Fact]
    public void A_spec_never_found_is_a_warning_line_on_stderr_and_a_row_saying_where_it_was_looked_for()
    {
        var result = Prochex.Run("run", "--count", "no_such_symbol", "--", "/usr/bin/env", Hit, "1");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains(
            result.StderrLines,
            l => l.StartsWith("prochex: warning: SPEC 'no_such_symbol' was not found in any image (searched: /usr/bin/env, ", StringComparison.Ordinal));
        Assert.Contains(result.Stdout.Split('\n'), l => l.Contains("no_such_symbol", StringComparison.Ordinal) && l.Contains("(not found in /usr/bin/env, ", StringComparison.Ordinal));
    }

    [Fact]
    public void Strict_fails_with_exit_1_on_a_spec_the_final_image_lacks_after_printing_the_table()
    {
        var result = Prochex.Run("run", "--json", "--strict", "--count", "no_such_symbol", "--count", "hit", "--", "/usr/bin/env", Hit, "2");

        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.Equal(2, result.Count("hit"));
        Assert.Contains($"prochex: --strict: 'no_such_symbol' not defined in the final image ({Hit})", result.Stderr, StringComparison.Ordinal);
        var pid = (int)result.JsonLines[0]["pid"]!;
        Assert.False(Targets.IsAlive(pid));
    }

    [Fact]
    public void Strict_fails_on_a_spec_found_only_in_an_earlier_image_and_passes_when_the_final_image_has_every_spec()
    {
        // execlater defines work; with its trigger already there it execs hit at once: work is in the first image only.
        var trigger = Path.Combine(_dir, "go");
        File.WriteAllText(trigger, "");
        var earlier = Prochex.Run("run", "--json", "--strict", "--count", "work", "--count", "hit", "--", FixturePrograms.PathOf("execlater"), "3", trigger);
        var fine = Prochex.Run("run", "--json", "--strict", "--count", "hit", "--count", "malloc", "--", Script("wrapper", "exec \"$@\""), Hit, "1", "4");

        Assert.True(earlier.ExitCode == 1, earlier.ToString());
        Assert.Equal("not in final image", (string?)Spec(earlier, "work")["status"]);
        Assert.Equal("execlater`work", (string?)Spec(earlier, "work")["location"]);
        Assert.Equal(3, earlier.Count("hit"));
        Assert.Contains($"--strict: 'work' not defined in the final image ({Hit})", earlier.Stderr, StringComparison.Ordinal);
        Assert.True(fine.ExitCode == 4, fine.ToString());
    }

    [Fact]
    public void Attach_to_a_process_that_execs_later_counts_before_and_after_the_exec()
    {
        var trigger = Path.Combine(_dir, "go");
        var victim = Targets.Start("execlater", "8", trigger);
        try
        {
            using var prochex = Prochex.Start("attach", victim.Id.ToString(CultureInfo.InvariantCulture), "--json", "--count", "work", "--count", "hit");
            prochex.WaitForStdout("\"spec\":\"work\"", TimeSpan.FromSeconds(30));

            // Five more calls of work in the first image, counted by the victim itself, before it may exec: a fixed
            // sleep let a loaded machine run it only once (every call after the planting is a hit, S14).
            var planted = CallsOf(victim.Id, "execlater");
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (CallsOf(victim.Id, "execlater") < planted + 5 && DateTime.UtcNow < deadline)
            {
                Thread.Sleep(10);
            }

            File.WriteAllText(trigger, "");
            var result = prochex.WaitForExit(TimeSpan.FromSeconds(60));

            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.InRange(result.Count("work"), 5, 1000);
            Assert.Equal(8, result.Count("hit"));
            Assert.Equal([Hit], Execs(result));
            Assert.Equal("not in final image", (string?)Spec(result, "work")["status"]);
            Assert.Equal("planted", (string?)Spec(result, "hit")["status"]);
            Assert.Equal(0, (int)result.Summary["exit"]!["code"]!);
        }
        finally
        {
            Targets.Kill(victim);
        }
    }

    private string Script(string name, string body)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, $"#!/bin/sh\n{body}\n");
        FixturePrograms.Run("chmod", "755", path);
        return path;
    }

    private static List<string?> Execs(CliResult result) =>
        [.. result.JsonLines.Where(e => (string?)e["event"] == "exec").Select(e => (string?)e["path"])];

    private static JsonObject Spec(CliResult result, string spec) =>
        result.Summary["specs"]!.AsArray().Single(s => (string?)s!["spec"] == spec)!.AsObject();

    private static List<string?> Images(JsonObject spec) => [.. spec["images"]!.AsArray().Select(i => (string?)i)];
}
