using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;

namespace ProcHex.Cli.Tests.Support;

/// <summary>What a finished prochex said and how it ended.</summary>
internal sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>The stdout of a --json run, one parsed object per line (every line must parse).</summary>
    public IReadOnlyList<JsonObject> JsonLines =>
        [.. Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonNode.Parse(line)!.AsObject())];

    public JsonObject Summary => JsonLines.Single(e => (string?)e["event"] == "summary");

    public long Count(string spec) => (long)Summary["counts"]![spec]!;

    public IReadOnlyList<string> StderrLines => Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>Starts the real prochex (the built Cli project) as a process, the way a user runs it.</summary>
internal sealed partial class Prochex : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly Lock _gate = new();

    private Prochex(IEnumerable<string> args, int? uid = null)
    {
        var launcher = Launcher();
        var info = new ProcessStartInfo(uid is null ? launcher[0] : "setpriv")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (uid is { } id)
        {
            foreach (var a in (string[])[$"--reuid={id}", $"--regid={id}", "--clear-groups", launcher[0]])
            {
                info.ArgumentList.Add(a);
            }
        }

        foreach (var a in launcher.Skip(1))
        {
            info.ArgumentList.Add(a);
        }

        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        _process = new Process { StartInfo = info };
        _process.OutputDataReceived += (_, e) => Append(_stdout, e.Data);
        _process.ErrorDataReceived += (_, e) => Append(_stderr, e.Data);
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public int Pid => _process.Id;

    public string Stderr
    {
        get
        {
            lock (_gate)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <summary>Runs prochex to its end (60 s at most) and returns what it said.</summary>
    public static CliResult Run(params string[] args)
    {
        using var p = Start(args);
        return p.WaitForExit(TimeSpan.FromSeconds(60));
    }

    public static Prochex Start(params string[] args) => new(args);

    /// <summary>
    /// <c>prochex inspect --json PID</c> of a sleeper, run again (up to 10 times) while its thread is caught
    /// running: a running thread has no PC to show (the kernel reports it as "running"), and on a loaded machine
    /// a sleeper can wait for a CPU for a while.
    /// </summary>
    public static CliResult InspectAsleep(int pid)
    {
        var pidText = pid.ToString(System.Globalization.CultureInfo.InvariantCulture);
        CliResult result = Run("inspect", "--json", pidText);
        for (var attempt = 1; attempt < 10 && result.ExitCode == 0 && !HasThreadPc(result); attempt++)
        {
            Thread.Sleep(50);
            result = Run("inspect", "--json", pidText);
        }

        return result;
    }

    private static bool HasThreadPc(CliResult result) =>
        result.JsonLines.Count == 1 && result.JsonLines[0]["threads"]?.AsArray().All(t => t?["pc"] is not null) == true;

    /// <summary>Runs prochex as another user (through setpriv; the caller must be root).</summary>
    public static CliResult RunAs(int uid, params string[] args)
    {
        using var p = new Prochex(args, uid);
        return p.WaitForExit(TimeSpan.FromSeconds(60));
    }

    /// <summary>Waits until stderr has a line containing <paramref name="text"/>.</summary>
    public string WaitForStderr(string text, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < timeout)
        {
            var line = Stderr.Split('\n').FirstOrDefault(l => l.Contains(text, StringComparison.Ordinal));
            if (line is not null)
            {
                return line;
            }

            if (_process.HasExited)
            {
                break;
            }

            Thread.Sleep(20);
        }

        throw new TimeoutException($"prochex never said '{text}'; stderr so far:\n{Stderr}");
    }

    /// <summary>Waits until stdout (--json) has a line containing <paramref name="text"/>.</summary>
    public string WaitForStdout(string text, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < timeout)
        {
            string output;
            lock (_gate)
            {
                output = _stdout.ToString();
            }

            if (output.Split('\n').FirstOrDefault(l => l.Contains(text, StringComparison.Ordinal)) is { } line)
            {
                return line;
            }

            if (_process.HasExited)
            {
                break;
            }

            Thread.Sleep(20);
        }

        throw new TimeoutException($"prochex never printed '{text}'; stderr so far:\n{Stderr}");
    }

    public void Signal(int signal) => Assert.Equal(0, Kill(Pid, signal));

    public CliResult WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
            throw new TimeoutException($"prochex did not finish in {timeout}; stderr:\n{Stderr}");
        }

        _process.WaitForExit();
        lock (_gate)
        {
            return new CliResult(_process.ExitCode, _stdout.ToString(), _stderr.ToString());
        }
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process.Dispose();
    }

    /// <summary>The pid in a "prochex: pid N: ..." line.</summary>
    public static int PidIn(string line)
    {
        var match = System.Text.RegularExpressions.Regex.Match(line, @"pid (\d+)");
        Assert.True(match.Success, $"no pid in '{line}'");
        return int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    private void Append(StringBuilder to, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_gate)
        {
            to.Append(line).Append('\n');
        }
    }

    /// <summary>
    /// The command line that starts prochex: the native binary when PROCHEX_CLI names one (CI runs this suite
    /// against the NativeAOT build that way), else the dotnet host with the prochex.dll built beside the tests.
    /// </summary>
    private static string[] Launcher()
    {
        if (Environment.GetEnvironmentVariable("PROCHEX_CLI") is { Length: > 0 } native)
        {
            return File.Exists(native)
                ? [Path.GetFullPath(native)]
                : throw new FileNotFoundException($"PROCHEX_CLI names {native}, which does not exist (publish it first)", native);
        }

        return [DotnetHost(), Path.Combine(AppContext.BaseDirectory, "prochex.dll")];
    }

    private static string DotnetHost()
    {
        if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host))
        {
            return host;
        }

        return Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet" ? self : "dotnet";
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
