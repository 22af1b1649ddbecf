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
        Metrics = metrics ?? ProcHexMetrics.Shared;
        Mode = mode;
        IsCreated = created;
        Logger = logger;
        Breakpoints = new BreakpointSet(process, logger);
        Lifecycle = new VictimLifecycle(
            mode == GrabMode.ReadOnly ? LifecycleState.Observed : created ? LifecycleState.Created : LifecycleState.Grabbed,
            process.Pid,
            Metrics,
            Breakpoints);
        StopMask = new StopMask(stopAt);
        Handle = new ProcessHandle(this);
    }

    public ITracedProcess Process { get; }

    public ProcHexMetrics Metrics { get; }

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

    public bool IsAlive => Lifecycle.IsAlive;

    /// <inheritdoc cref="VictimLifecycle.TextInReach"/>
    public bool TextInReach => Lifecycle.TextInReach;

    /// <summary>S9: left stopped if someone else stopped it, else killed if we created it, else left running.</summary>
    public ReleaseMode ReleaseMode =>
        Lifecycle.IsHeldByOthers ? ReleaseMode.Hang : IsCreated ? ReleaseMode.Kill : ReleaseMode.Run;

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

    /// <summary>
    /// Parks until Continue or destroy. Called under the victim lock, as destroy's
    /// <see cref="RequestQuitAsync"/> begins the release: so either the release comes first (and the loop does not
    /// park) or it finds the park and wakes it.
    /// </summary>
    public Task BeginIdle()
    {
        var idle = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _idle, idle);
        return idle.Task;
    }

    /// <summary>Wakes an idle victim (S11); otherwise does nothing.</summary>
    public bool Continue() => Interlocked.Exchange(ref _idle, null)?.TrySetResult() ?? false;

    /// <summary>
    /// Tells the control loop to end and wakes it from whatever it waits for (S9). The release begins under the
    /// victim lock, so the loop sees it between two stops, never in the middle of handling one.
    /// </summary>
    public async Task RequestQuitAsync(object flow)
    {
        using (await Lock.EnterAsync(flow))
        {
            Lifecycle.Fire(VictimTrigger.BeginRelease);
        }

        if (!Continue() && Lifecycle.IsReleasing)
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
