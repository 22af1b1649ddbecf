using System.Globalization;

namespace ProcHex.Peers;

/// <summary>
/// Breakpoint throughput of ProcHex (library: emulated and plain step-over, in-victim counting; CLI) side by side with
/// gdb, ltrace -c, kernel uprobes, a minimal C ptrace tracer and the untraced driver, on three builds of the fixture
/// (gcc's default, endbr64, push %rbp), on 1, 4 and 8 threads; plus create-to-main latency against gdb and the
/// in-victim install time. <c>--quick</c> is the smoke run, <c>--full</c> the numbers (median and spread of 7 runs).
/// </summary>
internal static class Program
{
    private const string Usage = """
        usage: ProcHex.Peers (--quick | --full) [--runs K] [--calls N] [--slow-calls N] [--markdown FILE]
               ProcHex.Peers --install [--runs K] [--markdown FILE]
               ProcHex.Peers --startup --native PATH [--runs K] [--trap-runs K] [--calls N] [--markdown FILE]
          Every peer runs on three builds of libpeer.so (default: gcc -O2; endbr64: -fcf-protection=branch;
          push-rbp: -fcf-protection=none -fno-omit-frame-pointer), on 1, 4 and 8 threads: ProcHex (library trap
          paths, in-victim counter, CLI), the C tracer, gdb, ltrace -c, kernel uprobes (perf; skipped if missing)
          and the driver untraced.
          --quick       smoke run: 1 run, 2,000 calls (gdb and ltrace 200)
          --full        the numbers: 7 runs, 50,000 calls (gdb and ltrace 5,000)
          --runs K      runs per peer, build and threading (the figure is their median, with min-max)
          --calls N     calls per run for ProcHex and the C tracer, in all (split over the threads; 100× that
                        for in-victim counting and the untraced driver)
          --slow-calls N  calls per run for gdb and ltrace
          --markdown F  also write the report to F
          --alloc-profile  only run the emulated library path and list the types it allocates (GC allocation ticks)
          --startup     start-to-exit and peak RSS of `prochex run --count malloc -- /bin/true`, native and JIT,
                        against gdb and ltrace (median of 20 rounds), then the trap path of both CLIs (5 runs
                        of 20,000 calls); --native names the published native prochex
          --trap-runs K runs per CLI of the --startup trap path
          --install     only the in-victim install and removal of 100 counters while 4 threads call them
                        (--runs rounds, 10 by default): the time every thread stays stopped
        """;

    public static async Task<int> Main(string[] args)
    {
        if (!Settings.TryParse(args, out var settings, out var error))
        {
            await Console.Error.WriteLineAsync(error + "\n" + Usage);
            return 2;
        }

        try
        {
            if (settings.AllocationProfile)
            {
                await Bench.ProfileAllocationsAsync(settings);
                return 0;
            }

            var report = settings.Mode switch
            {
                "startup" => await Startup.RunAsync(settings),
                "install" => await Bench.InstallOnlyAsync(settings),
                _ => await Bench.RunAsync(settings),
            };
            Console.Write(report.Markdown);
            if (settings.MarkdownFile is { } file)
            {
                await File.WriteAllTextAsync(file, report.Markdown);
            }

            if (report.ProcHexMiscounted)
            {
                await Console.Error.WriteLineAsync("FAILED: a ProcHex path did not count exactly N hits, or a start-up run failed (see the table)");
                return 1;
            }

            return 0;
        }
        catch (BenchFailure ex)
        {
            await Console.Error.WriteLineAsync("FAILED: " + ex.Message);
            return 1;
        }
    }
}

internal sealed record Settings(string Mode, int Runs, int Calls, int SlowCalls, int WarmUpCalls, int LatencyRuns, string? MarkdownFile)
{
    public bool AllocationProfile { get; init; }

    /// <summary>The published native prochex (--startup).</summary>
    public string? NativeCli { get; init; }

    /// <summary>Runs per CLI of the --startup trap path.</summary>
    public int TrapRuns { get; init; } = 1;

    public static bool TryParse(string[] args, out Settings settings, out string error)
    {
        settings = null!;
        error = "";
        Settings? chosen = null;
        int? runs = null, calls = null, slowCalls = null, trapRuns = null;
        string? markdown = null, native = null;
        var profile = false;
        for (var i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new FormatException($"{args[i]} needs a value");
            int Count() => int.TryParse(Value(), CultureInfo.InvariantCulture, out var n) && n > 0 ? n : throw new FormatException($"{args[i - 1]} needs a positive number");
            try
            {
                switch (args[i])
                {
                    case "--quick":
                        chosen = new Settings("quick", 1, 2_000, 200, 500, 3, null);
                        break;
                    case "--full":
                        chosen = new Settings("full", 7, 50_000, 5_000, 5_000, 9, null);
                        break;
                    case "--install":
                        chosen = new Settings("install", 10, 0, 0, 0, 0, null);
                        break;
                    case "--startup":
                        chosen = new Settings("startup", 20, 20_000, 0, 0, 0, null) { TrapRuns = 5 };
                        break;
                    case "--native":
                        native = Value();
                        break;
                    case "--trap-runs":
                        trapRuns = Count();
                        break;
                    case "--runs":
                        runs = Count();
                        break;
                    case "--calls":
                        calls = Count();
                        break;
                    case "--slow-calls":
                        slowCalls = Count();
                        break;
                    case "--markdown":
                        markdown = Value();
                        break;
                    case "--alloc-profile":
                        profile = true;
                        break;
                    default:
                        error = $"unknown argument {args[i]}";
                        return false;
                }
            }
            catch (FormatException ex)
            {
                error = ex.Message;
                return false;
            }
        }

        if (chosen is null)
        {
            error = "choose --quick, --full or --startup";
            return false;
        }

        settings = chosen with
        {
            Runs = runs ?? chosen.Runs,
            Calls = calls ?? chosen.Calls,
            SlowCalls = slowCalls ?? chosen.SlowCalls,
            MarkdownFile = markdown,
            AllocationProfile = profile,
            NativeCli = native,
            TrapRuns = trapRuns ?? chosen.TrapRuns,
        };
        return true;
    }
}
