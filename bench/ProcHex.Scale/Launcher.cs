using System.Diagnostics;
using System.Globalization;

namespace ProcHex.Scale;

/// <summary>
/// "scale-victim launch N": our only child, the parent of every sleeper. Closing its stdin makes it SIGKILL and
/// reap them all; if this process dies first, its stdin ends and it does the same.
/// </summary>
internal sealed class Launcher : IDisposable
{
    private readonly Process _process;

    private Launcher(Process process, IReadOnlyList<int> pids)
    {
        _process = process;
        Pids = pids;
    }

    public IReadOnlyList<int> Pids { get; }

    public int LauncherPid => _process.Id;

    /// <remarks>
    /// Its pipes are read synchronously: async reads of a redirected stream start the runtime's socket engine
    /// thread, which would show up in the thread count as if the tracer had made it.
    /// </remarks>
    public static Launcher Start(Fixture fixture, int count, bool aligned, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(fixture.Path)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("launch");
        start.ArgumentList.Add(count.ToString(CultureInfo.InvariantCulture));
        start.ArgumentList.Add(aligned ? "aligned" : "spread");
        var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start the launcher");
        var pids = new List<int>(count);
        using var cancel = new CancellationTokenSource(timeout);
        using var kill = cancel.Token.Register(() => process.Kill());
        try
        {
            // Each sleeper prints its pid after its exec: once listed it is a fully loaded scale-victim.
            while (pids.Count < count)
            {
                var line = process.StandardOutput.ReadLine()
                    ?? throw new InvalidOperationException($"the launcher ended after {pids.Count} of {count} sleepers");
                pids.Add(int.Parse(line, CultureInfo.InvariantCulture));
            }
        }
        catch
        {
            process.Kill();
            process.Dispose();
            throw;
        }

        return new Launcher(process, pids);
    }

    /// <summary>Lets the launcher kill and reap every sleeper; returns how many it reaped.</summary>
    public int KillAndReap(TimeSpan timeout)
    {
        _process.StandardInput.Close();
        using var cancel = new CancellationTokenSource(timeout);
        using var kill = cancel.Token.Register(() => _process.Kill());
        var line = _process.StandardOutput.ReadLine();
        _process.WaitForExit();
        return line is not null && line.StartsWith("reaped ", StringComparison.Ordinal)
            ? int.Parse(line["reaped ".Length..], CultureInfo.InvariantCulture)
            : -1;
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit();
        }

        _process.Dispose();
    }
}
