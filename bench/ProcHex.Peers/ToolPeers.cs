using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace ProcHex.Peers;

/// <summary>
/// ProcHex through its CLI: <c>dotnet prochex.dll run --json --count SPEC -- driver ...</c> (or the native prochex,
/// <paramref name="launcher"/> being the command line that starts it); the count is the summary's.
/// </summary>
internal sealed class CliPeer(string name, params string[] launcher) : Peer(name)
{
    public override bool IsProcHex => true;

    /// <summary>--count-mode: null for the default (in the victim where it can), "trap" for the trap path.</summary>
    public string? CountMode { get; init; }

    public override bool Fast => CountMode != "trap";

    public override async Task<PeerRun> RunAsync(Fixture fixture, int calls, int threads)
    {
        var timeFile = fixture.NewTimeFile();
        var result = await Tool.RunAsync(
            launcher[0],
            [.. launcher[1..], "run", "--json", .. (CountMode is { } mode ? ["--count-mode", mode] : Array.Empty<string>()), "--count", Fixture.Spec, "--", .. DriverArguments(fixture, calls, threads, timeFile)],
            RunLimit(calls));
        long counted = 0;
        foreach (var line in result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (JsonNode.Parse(line) is JsonObject o && (string?)o["event"] == "summary" && o["counts"]?[Fixture.Spec] is { } hits)
            {
                counted = (long)hits;
            }
        }

        return FromTool(calls, timeFile, counted, result);
    }
}

/// <summary>gdb -batch with a breakpoint whose commands are silent and continue; the count is info breakpoints'.</summary>
internal sealed partial class GdbPeer(string? gdb) : Peer("gdb (break + silent/continue)")
{
    public override bool Slow => true;

    public override string? Unavailable => gdb is null ? "gdb is not installed (apt-get install gdb)" : null;

    public override async Task<PeerRun> RunAsync(Fixture fixture, int calls, int threads)
    {
        var script = Path.Combine(fixture.Directory, "count.gdb");
        await File.WriteAllTextAsync(script, $"""
            set pagination off
            set confirm off
            set breakpoint pending on
            set startup-with-shell off
            break {Fixture.Function}
            commands
            silent
            continue
            end
            run
            info breakpoints

            """);
        var timeFile = fixture.NewTimeFile();
        var result = await Tool.RunAsync(gdb!, ["-batch", "-nx", "-x", script, "--args", .. DriverArguments(fixture, calls, threads, timeFile)], RunLimit(calls));
        var hit = HitLine().Match(result.Stdout);
        var counted = hit.Success ? long.Parse(hit.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
        var problem = result.Stdout.Contains("exited normally", StringComparison.Ordinal) ? null : $"the driver did not exit normally: {FirstLine(result.Stderr)}";
        return FromTool(calls, timeFile, counted, result, problem);
    }

    /// <summary>Runs gdb to main of <paramref name="program"/> (or only loads it) and returns its whole wall time.</summary>
    public async Task<TimeSpan> ToMainAsync(string program, bool run)
    {
        string[] args = run ? ["-batch", "-nx", "-ex", "break main", "-ex", "run", program] : ["-batch", "-nx", program];
        var result = await Tool.RunAsync(gdb!, args, TimeSpan.FromMinutes(1));
        if (run && !(result.Stdout.Contains("Breakpoint 1, ", StringComparison.Ordinal) && result.Stdout.Contains(" main ", StringComparison.Ordinal)))
        {
            throw new BenchFailure($"gdb did not stop at main:\n{result.Stdout}{result.Stderr}");
        }

        return result.Wall;
    }

    [GeneratedRegex(@"breakpoint already hit (\d+) time")]
    private static partial Regex HitLine();
}

/// <summary>
/// ltrace -c on the one function: it plants its breakpoint on the driver's PLT entry, so it counts exactly the calls
/// the others count at the function itself. -f follows the driver's threads (without it ltrace counts no call made
/// on a thread other than the first).
/// </summary>
internal sealed class LtracePeer(string? ltrace) : Peer("ltrace -c")
{
    public override bool Slow => true;

    public override string? Unavailable => ltrace is null ? "ltrace is not installed (apt-get install ltrace)" : null;

    public override async Task<PeerRun> RunAsync(Fixture fixture, int calls, int threads)
    {
        var timeFile = fixture.NewTimeFile();
        var output = Path.Combine(fixture.Directory, "ltrace.out");
        var result = await Tool.RunAsync(ltrace!, ["-f", "-c", "-e", Fixture.Function, "-o", output, .. DriverArguments(fixture, calls, threads, timeFile)], RunLimit(calls));
        long counted = 0;
        if (File.Exists(output))
        {
            foreach (var line in await File.ReadAllLinesAsync(output))
            {
                // % time  seconds  usecs/call  calls  function
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length == 5 && parts[4] == Fixture.Function)
                {
                    counted = long.Parse(parts[3], CultureInfo.InvariantCulture);
                }
            }
        }

        return FromTool(calls, timeFile, counted, result);
    }
}

/// <summary>
/// The hand-written C tracer (c/ctrace.c): plain two-stop step-over, no stop of the other threads; or, with
/// <paramref name="emulate"/>, issue 19's one-stop peer: an entry that opens with endbr64 or push %rbp is emulated in
/// the stop (the int3 never leaves the text), any other is stepped as in the two-stop one.
/// </summary>
internal sealed class CTracerPeer(bool emulate = false) : Peer(emulate ? "C ptrace tracer (one stop/hit, emulating)" : "C ptrace tracer (two stops/hit)")
{
    public override async Task<PeerRun> RunAsync(Fixture fixture, int calls, int threads)
    {
        var timeFile = fixture.NewTimeFile();
        string[] mode = emulate ? ["--emulate"] : [];
        var result = await Tool.RunAsync(
            fixture.CTracer,
            [.. mode, Hex(fixture.MainOffset), Fixture.Library, Hex(fixture.FunctionOffset), .. DriverArguments(fixture, calls, threads, timeFile)],
            RunLimit(calls));
        var line = result.Stdout.Split('\n').FirstOrDefault(l => l.StartsWith("hits ", StringComparison.Ordinal));
        var counted = line is null ? 0 : long.Parse(line[5..], CultureInfo.InvariantCulture);
        return FromTool(calls, timeFile, counted, result);
    }

    private static string Hex(ulong value) => value.ToString("x", CultureInfo.InvariantCulture);
}

/// <summary>
/// The driver alone, without a tracer: what an uninstrumented call costs (the floor of every peer, issue 18's
/// "within 3× of an uninstrumented call" target). The count is the driver's own; it gets as many calls as in-victim
/// counting, so both runs start the same threads.
/// </summary>
internal sealed class UntracedPeer() : Peer("untraced (the driver alone)")
{
    public override bool Fast => true;

    public override async Task<PeerRun> RunAsync(Fixture fixture, int calls, int threads)
    {
        var timeFile = fixture.NewTimeFile();
        var argv = DriverArguments(fixture, calls, threads, timeFile);
        var result = await Tool.RunAsync(argv[0], argv[1..], RunLimit(calls));
        return FromTool(calls, timeFile, ReadTimeFile(timeFile).Calls, result);
    }
}

/// <summary>
/// The kernel's uprobes: <c>perf probe -x libpeer.so prochexbench:peertick_BUILD=peer_tick</c> once per build
/// (all removed at the end), then <c>perf stat -x, -e prochexbench:peertick_BUILD -- driver ...</c> per run; the count
/// is perf's. Each hit is a trap the kernel handles without a tracer: the cost in-victim counting is measured against
/// (issue 18).
/// </summary>
internal sealed class UprobesPeer(string? perf) : Peer("kernel uprobes (perf probe + perf stat)")
{
    private const string Group = "prochexbench";
    private readonly HashSet<string> _added = [];
    private string? _refused;
    private bool _cleared;

    public override string? Unavailable => perf is null ? "perf is not installed (apt-get install linux-perf)" : _refused;

    public override async Task<PeerRun> RunAsync(Fixture fixture, int calls, int threads)
    {
        var probe = $"{Group}:peertick_{fixture.Variant.Identifier}";
        if (_refused is null && !_added.Contains(probe))
        {
            if (!_cleared)
            {
                await RemoveAsync();
                _cleared = true;
            }

            var added = await Tool.RunAsync(perf!, ["probe", "-q", "-x", Path.Combine(fixture.Directory, Fixture.Library), $"{probe}={Fixture.Function}"], TimeSpan.FromSeconds(60));
            if (added.ExitCode != 0)
            {
                _refused = $"perf probe failed: {FirstLine(added.Stderr)}";
            }
            else
            {
                _added.Add(probe);
            }
        }

        if (_refused is { } refused)
        {
            return new PeerRun(calls, 0, 0, 0, TimeSpan.Zero, refused);
        }

        var timeFile = fixture.NewTimeFile();
        var result = await Tool.RunAsync(perf!, ["stat", "-x", ",", "-e", probe, "--", .. DriverArguments(fixture, calls, threads, timeFile)], RunLimit(calls));
        long counted = 0;
        foreach (var line in result.Stderr.Split('\n'))
        {
            var fields = line.Split(',');
            if (fields.Length > 2 && fields[2] == probe && long.TryParse(fields[0], CultureInfo.InvariantCulture, out var hits))
            {
                counted = hits;
            }
        }

        return FromTool(calls, timeFile, counted, result);
    }

    /// <summary>Takes every probe of the bench out of the kernel (also before adding one, in case a killed run left it).</summary>
    public async Task RemoveAsync()
    {
        if (perf is not null)
        {
            _ = await Tool.RunAsync(perf, ["probe", "-q", "-d", Group + ":*"], TimeSpan.FromSeconds(60));
        }

        _added.Clear();
    }
}
