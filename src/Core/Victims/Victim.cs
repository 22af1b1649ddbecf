using Microsoft.Extensions.Logging;
using ProcHex.Breakpoints;
using ProcHex.Ports;

namespace ProcHex.Victims;

/// <summary>
/// One process held by a session: its OS handle, lifecycle, lock, breakpoints and stop requests, plus the
/// handle-table bookkeeping (references, cacheability, LRU position). The control loop drives it; clients
/// reach it through <see cref="ProcessHandle"/>.
/// </summary>
internal sealed class Victim
{
    private TaskCompletionSource? _idle;

    public Victim(ITracedProcess process, GrabMode mode, bool created, StopEvents stopAt, ILogger logger, ProcHexMetrics? metrics = null)
    {
        Process = process;
        Mode = mode;
        IsCreated = created;
        Logger = logger;
        Lifecycle = new VictimLifecycle(
            mode == GrabMode.ReadOnly ? VictimState.Observed : created ? VictimState.Created : VictimState.Grabbed,
            process.Pid,
            metrics);
        Breakpoints = new BreakpointSet(process, logger);
        StopMask = new StopMask(stopAt);
        Handle = new ProcessHandle(this);
    }

    public ITracedProcess Process { get; }

    public int Pid => Process.Pid;

    public GrabMode Mode { get; }

    public bool IsReadOnly => Mode == GrabMode.ReadOnly;

    public bool IsCreated { get; }

    /// <summary>Why a grab for control fell back to reading only (<see cref="GrabMode.ControlOrReadOnly"/>); null otherwise.</summary>
    public string? ReadOnlyReason { get; init; }

    /// <summary>The refusal behind <see cref="ReadOnlyReason"/>.</summary>
    public GrabRefusal? ReadOnlyRefusal { get; init; }

    public ILogger Logger { get; }

    public ProcessHandle Handle { get; }

    public VictimLifecycle Lifecycle { get; }

    public VictimState State => Lifecycle.State;

    public VictimLock Lock { get; } = new();

    public BreakpointSet Breakpoints { get; }

    /// <summary>Breakpoints on SPECs, looked up again at every library change and exec.</summary>
    public PendingBreakpointSet PendingBreakpoints { get; } = new();

    public StopMask StopMask { get; }

    public ExitStatus? Exit { get; set; }

    public string? LostReason { get; set; }

    /// <summary>Stopped by someone else while we waited: destroy must leave it stopped (S9, S20).</summary>
    public bool HeldByOthers { get; set; }

    /// <summary>Destroy asked the control loop to end.</summary>
    public bool Quit { get; private set; }

    /// <summary>The control loop, or null for read-only and monitor-less grabs.</summary>
    public Task? ControlLoop { get; set; }

    /// <summary>
    /// The rendezvous the victim first parked at: the one asked for, or the one it stopped at instead when that one
    /// cannot be reached (no main found, no dynamic linker). Null until then, and for a grab.
    /// </summary>
    public Rendezvous? RendezvousReached { get; set; }

    /// <summary>Completes when the victim first parks idle (true) or the control loop ends before that (false).</summary>
    public TaskCompletionSource<bool> FirstRendezvous { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Handle-table bookkeeping, guarded by the table's lock.
    public int References { get; set; }

    public bool Cacheable { get; set; }

    public bool Stale { get; set; }

    public bool Registered { get; set; }

    public LinkedListNode<Victim>? LruNode { get; set; }

    /// <summary>Where the victim sits in the handle table's list of cacheable victims, while it is cacheable.</summary>
    public LinkedListNode<Victim>? CacheNode { get; set; }

    public bool IsAlive => State is not (VictimState.Undead or VictimState.Lost or VictimState.Released);

    /// <summary>The control loop lost the victim because a wait for it failed, not because the kernel took it away.</summary>
    public bool WaitFailed { get; set; }

    /// <summary>
    /// Whether its text is ours to restore (S16). Not for a dead victim, nor for one the kernel took out of reach
    /// (an unobservable exec); but a loss that is only a failed wait leaves the victim running on, traced, every
    /// trap planted, and the release would let it (and every child it forks) run into them.
    /// </summary>
    public bool TextInReach => IsAlive || (State == VictimState.Lost && WaitFailed);

    public ReleaseMode ReleaseMode =>
        HeldByOthers ? ReleaseMode.Hang : IsCreated ? ReleaseMode.Kill : ReleaseMode.Run;

    /// <summary>Fails with the S23 error unless the handle is still held.</summary>
    public Victim Checked() =>
        State == VictimState.Released
            ? throw new InvalidHandleException($"pid {Pid}: the process handle was released")
            : this;

    /// <summary>
    /// Its pid now names another process (issue 17 item 3). Only asked where the pid is not pinned: a traced victim
    /// that lives cannot be replaced (its death waits for our reaping), a read-only or dead one can.
    /// </summary>
    public bool IsReplaced => (IsReadOnly || !IsAlive) && Process.WasReplaced();

    /// <summary>
    /// <see cref="Checked"/>, then refuses a handle whose process was replaced by another with the same pid: what
    /// reads the victim asks this first, so a stale handle never reads the newcomer.
    /// </summary>
    public Victim CheckedSameProcess() =>
        Checked().IsReplaced
            ? throw new StaleHandleException(
                $"pid {Pid}: the process this handle was for has ended and pid {Pid} now names another process; grab it again")
            : this;

    /// <summary>Parks until Continue or destroy; the caller has released the victim lock.</summary>
    public Task BeginIdle()
    {
        var idle = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        // A full fence between publishing the park and reading Quit, as RequestQuit has between setting Quit and
        // taking the park (its Interlocked.Exchange in Continue): then one of the two always sees the other. A release
        // write alone lets the read of Quit pass the store still in this CPU's store buffer (x86 reorders a store
        // with a later load), so both could miss each other and destroy would wait for a loop parked for good.
        _ = Interlocked.Exchange(ref _idle, idle);
        if (Quit)
        {
            idle.TrySetResult();
        }

        return idle.Task;
    }

    /// <summary>Wakes an idle victim (S11); otherwise does nothing.</summary>
    public bool Continue() => Interlocked.Exchange(ref _idle, null)?.TrySetResult() ?? false;

    /// <summary>Tells the control loop to end and wakes it from whatever it waits for (S9).</summary>
    public void RequestQuit()
    {
        Quit = true;
        if (!Continue() && State is VictimState.Running or VictimState.HeldByOthers or VictimState.Stopped)
        {
            try
            {
                // Destroy waits for the loop this stop wakes: one transient failure here would hang it for good.
                Retry.Persistently(Process, static p => p.RequestStop());
            }
            catch (TracerException ex)
            {
                Log.OperationFailed(Logger, Pid, "request stop", ex.Message);
            }
        }
    }

    /// <summary>The session that holds this victim (S23 rejects handles of other sessions).</summary>
    public object? Owner { get; init; }

    /// <exception cref="SymbolNotFoundException">No such object or symbol.</exception>
    /// <exception cref="ProcHexException">The OS would not show the victim's objects (it died, or may not be read).</exception>
    public ulong LookupSymbol(string objectSymbol)
    {
        var (objectName, symbol) = SymbolSpec.Parse(objectSymbol);
        _ = CheckedSameProcess();
        try
        {
            return Process.Symbols.TryLookup(objectName, symbol, out var address)
                ? address
                : throw new SymbolNotFoundException(SymbolSpec.Describe(Pid, objectName, symbol, Process.Symbols));
        }
        catch (TracerException ex)
        {
            throw ProcHexException.FromBackend(ex);
        }
    }
}
