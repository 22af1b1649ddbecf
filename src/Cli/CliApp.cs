using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using System.Text.Json.Nodes;
using ProcHex.Backends.Fake;
using ProcHex.Elf;

namespace ProcHex.Cli;

/// <summary>The <c>prochex</c> command line: run, attach, inspect; exit 2 for usage errors, 1 for failures.</summary>
internal static class CliApp
{
    private static readonly string[] Rendezvous = ["create", "preinit", "postinit", "main"];

    public static async Task<int> MainAsync(string[] args)
    {
        var backend = new Option<string>("--backend")
        {
            Description = "The process-control backend: linux, freebsd or fake (default: this OS's own).",
            Recursive = true,
            HelpName = "linux|freebsd|fake",
        };
        backend.AcceptOnlyFromAmong(Hosting.Linux, Hosting.FreeBsd, Hosting.Fake);
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Debug logging on stderr.", Recursive = true };
        var noDemangle = new Option<bool>("--no-demangle")
        {
            Description = "Show C++ symbols raw (mangled) instead of demangled. SPECs match both forms either way.",
            Recursive = true,
        };

        var root = new RootCommand("prochex: run, attach to and inspect processes with ProcHex (DTrace's libproc for .NET).")
        {
            backend,
            verbose,
            noDemangle,
        };
        var common = new CommonOptions(backend, verbose, noDemangle);
        root.Subcommands.Add(RunCommand(common));
        root.Subcommands.Add(AttachCommand(common));
        root.Subcommands.Add(InspectCommand(common));

        var parse = root.Parse(args);
        var error = UnrecognizedOption(parse) ?? (parse.Errors.Count > 0 ? parse.Errors[0].Message : null);
        if (error is not null)
        {
            await Console.Error.WriteLineAsync("prochex: " + error);
            await Console.Error.WriteLineAsync("Try 'prochex --help' for more information.");
            return CliFailure.Usage;
        }

        return await parse.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null, EnableDefaultExceptionHandler = false });
    }

    private static Command RunCommand(CommonOptions common)
    {
        var count = CountOption();
        var strict = StrictOption();
        var countMode = CountModeOption();
        var by = ByOption();
        var stopAt = new Option<string>("--stop-at")
        {
            Description = "Where the breakpoints are planted: create, preinit, postinit or main (default: create, and each SPEC as soon as its object is loaded). main needs no main symbol; where main cannot be found, the rendezvous reached is reported.",
            HelpName = "create|preinit|postinit|main",
        };
        stopAt.AcceptOnlyFromAmong(Rendezvous);
        var cwd = new Option<string>("--cwd") { Description = "The program's working directory (default: ours).", HelpName = "DIR" };
        var stdin = new Option<string>("--stdin") { Description = "The program's standard input, read from FILE (default: ours).", HelpName = "FILE" };
        var stdout = new Option<string>("--stdout") { Description = "The program's standard output, written to FILE, truncated (default: ours; with --json and no -o, our standard error).", HelpName = "FILE" };
        var stderr = new Option<string>("--stderr") { Description = "The program's standard error, written to FILE, truncated (default: ours).", HelpName = "FILE" };
        var noAslr = new Option<bool>("--no-aslr") { Description = "Start the program with address-space layout randomization off (same addresses each run)." };
        var json = JsonOption();
        var output = OutputOption();
        var interval = IntervalOption();
        var metrics = MetricsOption();
        var program = new Argument<string[]>("PROGRAM")
        {
            Description = "The program and its arguments, after -- or from the first word that is not an option; every word " +
                "from PROGRAM on is the program's, options too (found on PATH when it has no slash).",
            HelpName = "PROGRAM [ARGS]",
            Arity = ArgumentArity.OneOrMore,
            CaptureRemainingTokens = true,
        };
        var command = new Command("run", "Run PROGRAM under control, count hits per SPEC, exit with its status (128+N if killed by signal N). " + Streams)
        {
            count,
            strict,
            countMode,
            by,
            stopAt,
            cwd,
            stdin,
            stdout,
            stderr,
            noAslr,
            json,
            output,
            interval,
            metrics,
            program,
        };
        command.SetAction((parse, _) => ExecuteAsync(parse, common, new ReportOptions(json, output, interval, metrics), Specs(parse, count), (context, session) =>
        {
            var rendezvous = parse.GetValue(stopAt) switch
            {
                "preinit" => ProcHex.Rendezvous.Preinit,
                "postinit" => ProcHex.Rendezvous.Postinit,
                "main" => ProcHex.Rendezvous.Main,
                _ => ProcHex.Rendezvous.Create,
            };
            var options = new CreateOptions
            {
                StopAt = rendezvous,
                WorkingDirectory = parse.GetValue(cwd),
                StandardInput = parse.GetValue(stdin) is { } input ? StdioTarget.File(input) : StdioTarget.Inherit,
                StandardOutput = parse.GetValue(stdout) is { } output ? StdioTarget.File(output) : StdioTarget.Inherit,
                StandardError = parse.GetValue(stderr) is { } error ? StdioTarget.File(error) : StdioTarget.Inherit,
                DisableAslr = parse.GetValue(noAslr),
            };
            return Commands.RunAsync(context, session, Counting(parse, count, strict, countMode, by), options, parse.GetRequiredValue(program));
        }));
        return command;
    }

    /// <summary>
    /// An unknown option is a usage error (issue 17 item 7). System.CommandLine takes a word it does not know for an
    /// argument, so <c>run --bogus -- prog</c> would run a program named --bogus and <c>attach --bogus 1</c> would
    /// blame the 1. A word that looks like an option (a dash, then not a digit: <c>attach -5</c> stays a bad process id)
    /// and fills an argument without an explicit <c>--</c> before it is unrecognized. PROGRAM captures the rest of the
    /// line, so only its first word can be ours; the words after it are the program's own.
    /// </summary>
    private static string? UnrecognizedOption(ParseResult parse)
    {
        var tokens = parse.Tokens;
        foreach (var argument in parse.CommandResult.Children.OfType<ArgumentResult>())
        {
            var ours = argument.Argument.CaptureRemainingTokens ? argument.Tokens.Take(1) : argument.Tokens;
            foreach (var token in ours)
            {
                var text = token.Value;
                var index = IndexOf(tokens, token);
                var escaped = tokens.Take(index).Any(t => t.Type == TokenType.DoubleDash);
                if (text.Length > 1 && text[0] == '-' && !char.IsAsciiDigit(text[1]) && !escaped)
                {
                    return $"Unrecognized command or argument '{text}'.";
                }
            }
        }

        return null;
    }

    private static int IndexOf(IReadOnlyList<Token> tokens, Token token)
    {
        for (var i = 0; i < tokens.Count; i++)
        {
            if (ReferenceEquals(tokens[i], token))
            {
                return i;
            }
        }

        return tokens.Count;
    }

    private static Command AttachCommand(CommonOptions common)
    {
        var count = CountOption();
        var strict = StrictOption();
        var countMode = CountModeOption();
        var by = ByOption();
        var duration = Seconds("--duration", "Stop counting after this many seconds (default: until Ctrl-C, SIGTERM or every process exits).");
        var json = JsonOption();
        var output = OutputOption();
        var interval = IntervalOption();
        var metrics = MetricsOption();
        var pids = PidsArgument();
        var pidOption = new Option<int[]>("--pid", "-p")
        {
            Description = "A process to grab too (repeat it for more); the same as a PID argument.",
            HelpName = "PID",
            CustomParser = result => [.. result.Tokens.Select(t => ParsePid(t.Value, result))],
        };
        var command = new Command("attach", "Grab running processes, count hits per SPEC over all of them, then release them running as before. " + AttachStreams)
        {
            pids,
            pidOption,
            count,
            strict,
            countMode,
            by,
            duration,
            json,
            output,
            interval,
            metrics,
        };
        command.Validators.Add(result =>
        {
            if (result.GetResult(pids) is not { Tokens.Count: > 0 } && result.GetResult(pidOption) is not { Tokens.Count: > 0 })
            {
                result.AddError("attach needs a process id: PID... or -p PID");
            }
        });
        command.SetAction((parse, _) => ExecuteAsync(parse, common, new ReportOptions(json, output, interval, metrics), Specs(parse, count), (context, session) =>
            Commands.AttachAsync(
                context,
                session,
                [.. (parse.GetValue(pids) ?? []).Concat(parse.GetValue(pidOption) ?? []).Distinct()],
                Counting(parse, count, strict, countMode, by),
                parse.GetValue(duration) is { } seconds ? TimeSpan.FromSeconds(seconds) : null)));
        return command;
    }

    private static Command InspectCommand(CommonOptions common)
    {
        var json = JsonOption();
        var output = OutputOption();
        var pid = PidArgument();
        var command = new Command("inspect", "Show a process's loaded objects and state without stopping it.") { pid, json, output };
        command.SetAction((parse, _) => ExecuteAsync(parse, common, new ReportOptions(json, output, Interval: null, Metrics: null), [], (context, session) =>
            Commands.InspectAsync(context, session, parse.GetValue(pid))));
        return command;
    }

    private static Option<string[]> CountOption()
    {
        var count = new Option<string[]>("--count", "-c")
        {
            Description = "Count hits of SPEC: object`symbol or a bare symbol (executable first, then libraries); C++ names raw or " +
                "demangled (ns::Class::method, ns::f(int)); * and ? wildcards and [abc], [a-z], [!abc] classes (libc.so.6`mem*): a " +
                "wildcard SPEC is counted per matched function (object`function), and one that matches nothing is an error (exit 1). " +
                "A SPEC no image defines yet stays pending through exec and dlopen; counts are per SPEC (per function for a wildcard) " +
                "over the whole run. Repeatable.",
            HelpName = "SPEC",
            AllowMultipleArgumentsPerToken = false,
        };
        count.Validators.Add(result =>
        {
            foreach (var text in result.GetValueOrDefault<string[]>() ?? [])
            {
                if (CountSpec.TryParse(text, out var error) is null)
                {
                    result.AddError(error!);
                    return;
                }
            }
        });
        return count;
    }

    private static Option<bool> StrictOption() => new("--strict")
    {
        Description = "Exit 1 when a SPEC is not defined in the final image (default: a warning; the program's status decides).",
    };

    private static Option<string> CountModeOption()
    {
        var mode = new Option<string>("--count-mode")
        {
            Description = "How calls are counted: in-victim (default) counts in the process itself, without stopping it, wherever " +
                "a function's first instructions allow, and with a trap elsewhere; trap stops the process at every call, as " +
                "a debugger would (for comparison). The summary says which each SPEC used.",
            HelpName = "in-victim|trap",
        };
        mode.AcceptOnlyFromAmong("in-victim", "trap");
        return mode;
    }

    private static CountingOptions Counting(ParseResult parse, Option<string[]> count, Option<bool> strict, Option<string> mode, Option<string> by) =>
        new(Specs(parse, count), parse.GetValue(strict), parse.GetValue(mode) == "trap" || parse.GetValue(by) == "thread" ? CountingMode.Trap : CountingMode.InVictim)
        {
            By = parse.GetValue(by) switch
            {
                "pid" => Breakdown.Pid,
                "object" => Breakdown.Object,
                "thread" => Breakdown.Thread,
                _ => Breakdown.Spec,
            },
        };

    private static Option<string> ByOption()
    {
        var by = new Option<string>("--by")
        {
            Description = "Break the hits down in the summary: spec (default: per SPEC, per function for a wildcard), pid (per " +
                "process and function: object`function), object (per object), thread (per thread, tid and name, and function; " +
                "counts with traps, since a call counted in the process has no thread). --json adds them as \"rows\".",
            HelpName = "spec|pid|object|thread",
        };
        by.AcceptOnlyFromAmong("spec", "pid", "object", "thread");
        return by;
    }

    private static Option<bool> MetricsOption() => new("--metrics")
    {
        Description = "At the end, print the final values of ProcHex's instruments (meter ProcHex): victims, stops, breakpoint " +
            "hits, step-overs, owner-thread queue delay, notifications; a table, or one \"metrics\" object with --json.",
    };

    private static Option<bool> JsonOption() => new("--json")
    {
        Description = "JSON lines: one object per event, then a summary; on stdout, which then carries nothing else (the program's " +
            "own stdout goes to our stderr), or in FILE with -o.",
    };

    /// <summary>Where each stream goes (issue 20 item 7), for the help of run and attach.</summary>
    private const string Streams =
        "Output: without -o, events (one 'prochex:' line each) go to stderr and the table and intervals to stdout, among the " +
        "program's own output; with --json, JSON lines go to stdout and the program's stdout and stderr to our stderr; with " +
        "-o FILE, everything of ours (events, table, intervals, JSON lines) goes to FILE and the program keeps stdout and " +
        "stderr to itself. A fatal error and --verbose logging always go to stderr.";

    /// <summary>Where each stream goes for attach: the process's own streams are never ours.</summary>
    private const string AttachStreams =
        "Output: without -o, events (one 'prochex:' line each) go to stderr and the table and intervals to stdout; with " +
        "--json, JSON lines go to stdout; with -o FILE, everything of ours goes to FILE. The process was started elsewhere, " +
        "so the program keeps stdout and stderr to itself. A fatal error and --verbose logging always go to stderr.";

    private static Option<string> OutputOption() => new("--output", "-o")
    {
        Description = "Write the report (events, the table or JSON lines, intervals, metrics) to FILE, truncated, instead of " +
            "stdout and stderr: the program's own output is never mixed with ours.",
        HelpName = "FILE",
    };

    private static Option<double?> IntervalOption() => Seconds(
        "--interval",
        "Every SECONDS, print the hits since the last interval (a table, or {\"event\":\"interval\",\"t\":..,\"counts\":{..}} " +
        "with --json), keyed as the summary; the last interval comes before the summary, so the intervals add up to it. " +
        "With attach, --duration still ends counting.");

    private static Option<double?> Seconds(string name, string description) => new(name)
    {
        Description = description,
        HelpName = "SECONDS",
        CustomParser = result =>
        {
            var text = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
            if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) &&
                seconds > 0 && seconds < TimeSpan.MaxValue.TotalSeconds)
            {
                return seconds;
            }

            result.AddError($"{name} '{text}' is not a positive number of seconds");
            return null;
        },
    };

    private static Argument<int> PidArgument() => new("PID")
    {
        Description = "The process id.",
        CustomParser = result => ParsePid(result.Tokens.Count == 1 ? result.Tokens[0].Value : "", result),
    };

    private static Argument<int[]> PidsArgument() => new("PID")
    {
        Description = "The process ids (one or more; or give them with -p).",
        Arity = ArgumentArity.ZeroOrMore,
        CustomParser = result => [.. result.Tokens.Select(t => ParsePid(t.Value, result))],
    };

    private static int ParsePid(string text, SymbolResult result)
    {
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value > 0)
        {
            return value;
        }

        result.AddError($"'{text}' is not a process id (a positive number)");
        return 0;
    }

    private static List<CountSpec> Specs(ParseResult parse, Option<string[]> count) =>
        [.. (parse.GetValue(count) ?? []).Select(text => CountSpec.TryParse(text, out _)!)];

    /// <summary>Sets up output, signals and the backend, runs the command, and turns failures into one line and an exit code.</summary>
    private static async Task<int> ExecuteAsync(
        ParseResult parse,
        CommonOptions common,
        ReportOptions report,
        IReadOnlyList<CountSpec> specs,
        Func<CliContext, ProcHexSession, Task<int>> body)
    {
        var backend = parse.GetValue(common.Backend) ?? Hosting.DefaultBackend;
        var json = parse.GetValue(report.Json);
        var interval = report.Interval is null ? null : parse.GetValue(report.Interval);
        // -o FILE: opened before anything runs, so that a file that cannot be written fails at once.
        StreamWriter? opened = null;
        if (parse.GetValue(report.Output) is { } path)
        {
            try
            {
                opened = OpenOutput(path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
            {
                await Console.Error.WriteLineAsync($"prochex: cannot write the report to {path}: {ex.Message}");
                return CliFailure.Failed;
            }
        }

        using var file = opened;

        // Listening from before the session exists, so that every instrument and measurement is seen.
        using var metrics = report.Metrics is not null && parse.GetValue(report.Metrics) ? new MetricsCollector() : null;
        using var termination = new Termination();
        using Reporter reporter = (json, file) switch
        {
            (true, null) => new JsonReporter(StdoutDiversion.Divert()),
            (true, { } f) => new JsonReporter(f),
            (false, null) => new TextReporter(Console.Out, Console.Error, liveLine: !Console.IsErrorRedirected && interval is null),
            (false, { } f) => new TextReporter(f, f, liveLine: false, file: true),
        };

        // Started here, on the main thread, before any victim: never from the ptrace owner thread (see CxxFiltDemangler).
        using var demangler = new CxxFiltDemangler();
        Func<string, string> show = parse.GetValue(common.NoDemangle) ? static name => name : demangler.Show;
        var context = new CliContext(reporter, termination, backend, show)
        {
            Intervals = interval is { } seconds ? new IntervalCounts(TimeSpan.FromSeconds(seconds)) : null,
        };
        if (demangler.Unavailable is { } why && specs.FirstOrDefault(s => s.IsCxxName) is { } cxx)
        {
            reporter.Event(
                "warning",
                new JsonObject { ["spec"] = cxx.Text, ["message"] = why },
                $"warning: C++ names cannot be demangled, so SPEC '{cxx.Text}' matches raw names only: {why}");
        }

        try
        {
            var kernel = backend == Hosting.Fake ? Hosting.FakeKernelWithPrograms() : null;
            await using var services = Hosting.Build(backend, parse.GetValue(common.Verbose), kernel, demangler);
            var session = services.GetRequiredService<ProcHexSession>();
            if (kernel is null)
            {
                int status;
                await using (session)
                {
                    status = await body(context, session);
                }

                ReportMetrics(metrics, reporter);
                return status;
            }

            // The fake kernel only moves under its deterministic scheduler.
            var code = DeterministicScheduler.Run(
                async () =>
                {
                    await using (session)
                    {
                        return await body(context, session);
                    }
                },
                kernel,
                seed: 0,
                maxSteps: 10_000_000);
            ReportMetrics(metrics, reporter);
            return code;
        }
        catch (CliFailure failure)
        {
            ReportMetrics(metrics, reporter);
            reporter.Dispose();
            await Console.Error.WriteLineAsync("prochex: " + failure.Message);
            return failure.ExitCode;
        }
        catch (ProcHexException ex)
        {
            // Includes backend failures that reached us through a handle's members (reading maps or memory).
            ReportMetrics(metrics, reporter);
            reporter.Dispose();
            await Console.Error.WriteLineAsync("prochex: " + CliFailure.WithPermissionHint(ex.Message, ex.Kind));
            return CliFailure.Failed;
        }
        catch (SimulationStuckException ex)
        {
            await Console.Error.WriteLineAsync("prochex: the fake backend's simulation got stuck: " + ex.Message);
            return CliFailure.Failed;
        }
    }

    /// <summary>The -o file, created or truncated.</summary>
    private static StreamWriter OpenOutput(string path) =>
        new(path, append: false, new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: false)) { AutoFlush = true, NewLine = "\n" };

    /// <summary>--metrics: the final values, once the session is gone (its victims released, its loops ended).</summary>
    private static void ReportMetrics(MetricsCollector? metrics, Reporter reporter)
    {
        if (metrics is not null)
        {
            reporter.Metrics(metrics.Snapshot());
        }
    }
}

/// <summary>The options that say what a command reports and where: --json, -o, --interval (run, attach), --metrics (run, attach).</summary>
internal sealed record ReportOptions(Option<bool> Json, Option<string> Output, Option<double?>? Interval, Option<bool>? Metrics);

/// <summary>The options every command takes.</summary>
internal sealed record CommonOptions(Option<string> Backend, Option<bool> Verbose, Option<bool> NoDemangle);
