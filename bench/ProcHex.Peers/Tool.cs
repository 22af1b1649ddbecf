using System.Diagnostics;

namespace ProcHex.Peers;

/// <summary>What an external program did: its status, its output and how long it took from spawn to exit.</summary>
internal sealed record ToolResult(int ExitCode, string Stdout, string Stderr, TimeSpan Wall);

/// <summary>Runs the external programs of the bench: gcc, nm, objdump and the peers.</summary>
internal static class Tool
{
    public static string? Find(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin")
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name))
            .FirstOrDefault(File.Exists);

    public static async Task<ToolResult> RunAsync(string file, IEnumerable<string> arguments, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        // Started from the thread pool: this process answers ProcHex stops on the ptrace owner thread, and a child
        // forked from that thread would be reaped by its wait (WaitForExit would never return).
        var clock = Stopwatch.StartNew();
        using var process = await Task.Run(() => Process.Start(start)) ?? throw new InvalidOperationException($"cannot start {file}");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            throw new TimeoutException($"{Path.GetFileName(file)} did not finish within {timeout.TotalSeconds:0} s");
        }

        clock.Stop();
        return new ToolResult(process.ExitCode, await stdout, await stderr, clock.Elapsed);
    }

    /// <summary>Runs a build step; its failure ends the bench with its output.</summary>
    public static async Task<string> MustRunAsync(string file, params string[] arguments)
    {
        var result = await RunAsync(file, arguments, TimeSpan.FromMinutes(2));
        if (result.ExitCode != 0)
        {
            throw new BenchFailure($"{file} {string.Join(' ', arguments)} failed ({result.ExitCode}):\n{result.Stdout}{result.Stderr}");
        }

        return result.Stdout;
    }
}

/// <summary>The bench itself cannot run (a build step failed, ProcHex miscounted): exit 1 with this message.</summary>
internal sealed class BenchFailure(string message) : Exception(message);
