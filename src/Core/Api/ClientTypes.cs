using ProcHex.Ports;

namespace ProcHex;

/// <summary>Options for ProcHexSession.CreateAsync.</summary>
public sealed record CreateOptions
{
    /// <summary>Where the victim waits for Continue; null uses <see cref="ProcHexOptions.DefaultRendezvous"/>.</summary>
    public Rendezvous? StopAt { get; init; }

    /// <summary>"NAME=value" entries; null inherits the tracer's environment.</summary>
    public IReadOnlyList<string>? Environment { get; init; }

    /// <summary>The victim's working directory; null inherits the tracer's. A missing one fails the create (NotFound).</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>The victim's standard input; a <see cref="StdioTarget.Pipe"/> is <see cref="ProcessHandle.StandardInput"/>.</summary>
    public StdioTarget StandardInput { get; init; } = StdioTarget.Inherit;

    /// <summary>
    /// The victim's standard output; a <see cref="StdioTarget.Pipe"/> is <see cref="ProcessHandle.StandardOutput"/>.
    /// A victim that fills a pipe nobody reads blocks in its write (see <see cref="StdioTarget"/>); if it writes that
    /// much before its rendezvous, <see cref="ProcHexSession.CreateAsync"/> cannot return: pick a later read or a file.
    /// </summary>
    public StdioTarget StandardOutput { get; init; } = StdioTarget.Inherit;

    /// <summary>The victim's standard error; a <see cref="StdioTarget.Pipe"/> is <see cref="ProcessHandle.StandardError"/>.</summary>
    public StdioTarget StandardError { get; init; } = StdioTarget.Inherit;

    /// <summary>
    /// Starts the victim with address-space layout randomization off (Linux <c>personality(ADDR_NO_RANDOMIZE)</c>, as
    /// gdb's <c>set disable-randomization</c>): its stack, heap and libraries land at the same addresses each run.
    /// </summary>
    public bool DisableAslr { get; init; }

    /// <summary>
    /// Resource limits the victim starts with (set before its program runs); limits not named are inherited. Raising a
    /// hard limit needs privilege (PermissionDenied).
    /// </summary>
    public IReadOnlyDictionary<ResourceLimit, ResourceLimitValue>? ResourceLimits { get; init; }

    /// <summary>
    /// The victim's argv[0], in place of the first of the arguments given to CreateAsync (or as the only one when
    /// they are empty); the program started is still the file. Null keeps the arguments as given.
    /// </summary>
    public string? Argv0 { get; init; }
}

/// <summary>Runs on the control loop when a client breakpoint is hit, with the victim locked and stopped.</summary>
public delegate void BreakpointHandler(BreakpointHit hit);

/// <summary>One hit of a client breakpoint.</summary>
/// <param name="Handle">The victim.</param>
/// <param name="Address">The breakpoint's address.</param>
/// <param name="ThreadId">The thread that hit it.</param>
/// <param name="HitCount">Hits of this address so far, this one included.</param>
public readonly record struct BreakpointHit(ProcessHandle Handle, ulong Address, int ThreadId, long HitCount)
{
    /// <summary>The stopped thread's registers, arguments, return address and memory; valid only during the handler.</summary>
    public HitContext Context { get; init; }
}

/// <summary>The library list of a victim changed (S17): what a pid provider needs to probe new modules.</summary>
public sealed record LibraryListChange(
    ProcessHandle Handle,
    RtldEventKind Event,
    IReadOnlyList<LoadedObject> Added,
    IReadOnlyList<LoadedObject> Removed);

/// <summary>Runs on the control loop when the library list changed; an exception becomes a notification.</summary>
public delegate void LibraryListChangedHandler(LibraryListChange change);

/// <summary>A step in a victim's life that a tool may want to show or act on.</summary>
public enum MilestoneKind
{
    /// <summary>The initial libraries are mapped and the list is consistent, before their initializers run.</summary>
    Preinit,

    /// <summary>Library initializers have run; the executable's entry point is next.</summary>
    Postinit,

    /// <summary>The executable's <c>main</c> was reached.</summary>
    Main,

    /// <summary>The victim forked; the child runs on untraced, with no breakpoint of ours in its text.</summary>
    ForkFollowed,

    /// <summary>A vfork child let go of the shared memory (it exec'd or exited); breakpoints are back.</summary>
    VforkDone,

    /// <summary>The victim exec'd a new image; old breakpoints are forgotten, rtld and main are planted anew.</summary>
    ExecDone,
}

/// <summary>One milestone, reported from the control loop with the victim locked and stopped.</summary>
public sealed record Milestone(ProcessHandle Handle, MilestoneKind Kind, int ThreadId);

/// <summary>Runs on the control loop at each milestone; an exception becomes a notification.</summary>
public delegate void MilestoneHandler(Milestone milestone);

/// <summary>What a <see cref="VictimNotification"/> reports.</summary>
public enum NotificationKind
{
    /// <summary>The victim exited or was killed (undead).</summary>
    Exited,

    /// <summary>Control of the victim was lost.</summary>
    Lost,

    /// <summary>The library-list callback failed; the victim lives on.</summary>
    Error,
}

/// <summary>Something the client must hear about a victim (S19).</summary>
public sealed record VictimNotification(ProcessHandle Handle, NotificationKind Kind, ExitStatus? Exit, string? Message)
{
    /// <summary>The pid of the victim it is about.</summary>
    public int Pid => Handle.Pid;
}
