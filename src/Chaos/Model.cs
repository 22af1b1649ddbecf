using System.Runtime.CompilerServices;

namespace ProcHex.Chaos;

/// <summary>A program the runner can start, with its argv after argv[0] ({log} is the victim's churn log).</summary>
internal sealed record FixtureChoice(string Program, IReadOnlyList<string> Arguments, bool LongRunning)
{
    public override string ToString() => Arguments.Count == 0 ? Program : $"{Program} {string.Join(' ', Arguments.Select(a => a == "{log}" ? "LOG" : a))}";
}

internal enum Origin
{
    /// <summary>Started by the session (CreateAsync): our child, kill-on-last-close.</summary>
    Created,

    /// <summary>Started untraced under a nanny, for grabs.</summary>
    External,
}

/// <summary>What the runner believes about one process it started: the model the invariants compare the kernel with.</summary>
internal sealed class VictimModel
{
    public required int Id { get; init; }

    public required int Pid { get; init; }

    public required ulong StartTime { get; init; }

    public required Origin Origin { get; init; }

    public required FixtureChoice Fixture { get; init; }

    public string? StatusFile { get; init; }

    public int? Nanny { get; init; }

    public string? LogFile { get; init; }

    public List<HandleModel> Handles { get; } = [];

    /// <summary>The last outside stop signal we sent was SIGSTOP, not followed by SIGCONT (S20: it must stay stopped).</summary>
    public bool ExternallyStopped { get; set; }

    /// <summary>We sent it SIGKILL.</summary>
    public bool KilledByUs { get; set; }

    /// <summary>A controlling handle was held at some point: once all are released it must be untraced and clean.</summary>
    public bool EverControlled { get; set; }

    /// <summary>Its last controlling handle was released: created ones are killed (or left hung if stopped by others).</summary>
    public bool ReleasedControl { get; set; }

    /// <summary>A created victim released while we had stopped it from outside: destroy may leave it hung, alive (S9).</summary>
    public bool MayHang { get; set; }

    public long? DeadSince { get; set; }

    public bool ExitChecked { get; set; }

    public int LogLinesSeen { get; set; }

    /// <summary>Out of its slot: no further operations, final checks and clean-up only.</summary>
    public bool Retired { get; set; }

    /// <summary>Keys of the violations already reported for this victim: each is reported once.</summary>
    public HashSet<string> Reported { get; } = [];

    public string? LastRunKey { get; set; }

    public long LastRunCheck { get; set; }

    public string Name => $"v{Id} (pid {Pid}, {Fixture}, {Origin.ToString().ToLowerInvariant()})";

    public bool HeldFor(GrabMode kind) => Handles.Any(h => h.Kind == kind && h.References > 0);

    public bool HeldForControl => Handles.Any(h => h.Kind != GrabMode.ReadOnly && h.References > 0);
}

/// <summary>One handle the session gave the runner.</summary>
internal sealed class HandleModel
{
    public required int Id { get; init; }

    public required ProcessHandle Handle { get; init; }

    public required VictimModel Victim { get; init; }

    /// <summary>How it was first acquired (a later grab in another mode returns the same handle, S5).</summary>
    public required GrabMode Kind { get; init; }

    public int References { get; set; }

    public bool Destroyed { get; set; }

    public int DeathNotices { get; set; }

    /// <summary>When it was last continued (a victim that dies while idle is heard of only after Continue).</summary>
    public long LastContinue { get; set; }

    public List<(ClientBreakpoint Breakpoint, string Spec, StrongBox<long> Hits)> Breakpoints { get; } = [];

    public string Name => $"h{Id}";
}
