using System.Globalization;

namespace ProcHex.Peers;

/// <summary>
/// One run of one peer: how many hits the peer counted, how many calls the driver made and how long its calling
/// loop took (its own CLOCK_MONOTONIC), and anything that went wrong.
/// </summary>
internal sealed record PeerRun(int Calls, long Counted, long DriverCalls, long LoopNanoseconds, TimeSpan Wall, string? Problem)
{
    public bool Exact => Problem is null && Counted == Calls && DriverCalls == Calls;

    /// <summary>Hits the peer counted per second of the driver's loop (for an exact peer, N per second).</summary>
    public double HitsPerSecond => LoopNanoseconds > 0 ? Counted / (LoopNanoseconds / 1e9) : 0;

    /// <summary>Bytes the bench process allocated per hit (library peer only).</summary>
    public double? BytesPerHit { get; init; }

    /// <summary>How an in-victim counter counted (in-victim, or trap with the reason); null for other peers.</summary>
    public string? Mode { get; init; }

    public string Verdict => Problem ?? (Exact ? "exact" : $"counted {Counted} of {Calls}");
}

/// <summary>A tracer under comparison. Each run starts the driver afresh on the same fixture.</summary>
internal abstract class Peer(string name)
{
    public string Name { get; } = name;

    /// <summary>gdb and ltrace are far slower: they get fewer calls per run (hits/s stays comparable).</summary>
    public virtual bool Slow => false;

    /// <summary>
    /// Counting in the victim is thousands of times faster: it gets <see cref="FastFactor"/> times the calls, so its
    /// run is not all thread start-up (hits/s stays comparable).
    /// </summary>
    public virtual bool Fast => false;

    public const int FastFactor = 100;

    /// <summary>Why this peer cannot run here (a missing tool); null when it can.</summary>
    public virtual string? Unavailable => null;

    /// <summary>Our own paths: a miscount there fails the bench.</summary>
    public virtual bool IsProcHex => false;

    public abstract Task<PeerRun> RunAsync(Fixture fixture, int calls, int threads);

    protected static string[] DriverArguments(Fixture fixture, int calls, int threads, string timeFile) =>
        [fixture.Driver, calls.ToString(CultureInfo.InvariantCulture), threads.ToString(CultureInfo.InvariantCulture), timeFile];

    /// <summary>The driver's own account: "calls nanoseconds", or zeros when it never got to write it.</summary>
    protected static (long Calls, long Nanoseconds) ReadTimeFile(string timeFile)
    {
        if (!File.Exists(timeFile))
        {
            return (0, 0);
        }

        var parts = File.ReadAllText(timeFile).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return parts.Length == 2
            && long.TryParse(parts[0], CultureInfo.InvariantCulture, out var calls)
            && long.TryParse(parts[1], CultureInfo.InvariantCulture, out var ns)
            ? (calls, ns)
            : (0, 0);
    }

    protected static PeerRun FromTool(int calls, string timeFile, long counted, ToolResult result, string? problem = null)
    {
        var (driverCalls, ns) = ReadTimeFile(timeFile);
        problem ??= result.ExitCode == 0 ? null : $"exit {result.ExitCode}: {FirstLine(result.Stderr)}";
        return new PeerRun(calls, counted, driverCalls, ns, result.Wall, problem);
    }

    protected static string FirstLine(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "";

    protected static TimeSpan RunLimit(int calls) => TimeSpan.FromSeconds(60 + (calls / 200));
}
