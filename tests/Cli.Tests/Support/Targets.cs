using System.Diagnostics;
using System.Runtime.InteropServices;

namespace ProcHex.Cli.Tests.Support;

/// <summary>Programs the tests start themselves (for attach and inspect), and what /proc says about any process.</summary>
internal static partial class Targets
{
    public static Process Start(string fixture, params string[] args)
    {
        var info = new ProcessStartInfo(FixturePrograms.PathOf(fixture)) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        var process = Process.Start(info)!;
        // Let it get past the dynamic linker into its loop.
        Thread.Sleep(200);
        return process;
    }

    /// <summary>Like <see cref="Start"/>, with its standard input a pipe the test writes to, and no wait.</summary>
    public static Process StartWithInput(string fixture, params string[] args)
    {
        var info = new ProcessStartInfo(FixturePrograms.PathOf(fixture)) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        return Process.Start(info)!;
    }

    /// <summary>A field of /proc/PID/status, or null when the process is gone.</summary>
    public static string? Status(int pid, string field)
    {
        try
        {
            return File.ReadAllLines($"/proc/{pid}/status")
                .FirstOrDefault(l => l.StartsWith(field + ":", StringComparison.Ordinal))?[(field.Length + 1)..].Trim();
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>True while the pid exists and is not a zombie.</summary>
    public static bool IsAlive(int pid) => Status(pid, "State") is { } state && !state.StartsWith('Z') && !state.StartsWith('X');

    /// <summary>Waits up to <paramref name="timeout"/> for the pid to disappear (or become a zombie).</summary>
    public static bool WaitGone(int pid, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            if (!IsAlive(pid))
            {
                return true;
            }

            Thread.Sleep(20);
        }

        return false;
    }

    /// <summary>A pid no process has now.</summary>
    public static int UnusedPid()
    {
        var max = int.Parse(File.ReadAllText("/proc/sys/kernel/pid_max").Trim(), System.Globalization.CultureInfo.InvariantCulture);
        for (var pid = max - 1; pid > 1; pid--)
        {
            if (!Directory.Exists($"/proc/{pid}"))
            {
                return pid;
            }
        }

        throw new InvalidOperationException("every pid is in use");
    }

    public static void Kill(Process process)
    {
        if (!process.HasExited)
        {
            process.Kill();
            process.WaitForExit();
        }

        process.Dispose();
    }

    public static void Signal(int pid, int signal) => Assert.Equal(0, SendSignal(pid, signal));

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SendSignal(int pid, int signal);
}
