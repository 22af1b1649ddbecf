using System.Diagnostics;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ProcHex.Handles;
using ProcHex.Notifications;
using ProcHex.Ports;
using ProcHex.Victims;

namespace ProcHex;

/// <summary>
/// A tracer's process-control session (DTrace's dt_proc_hash and the dtrace_proc_* calls): create and grab
/// victims, share their handles between independent parts of the tracer, plant breakpoints, hear about
/// library changes and deaths.
/// </summary>
/// <remarks>
/// Threading: every member may be called from any thread. The handle table has one short lock that is never
/// held across an await; each victim has its own async lock shared with its control loop (S21). Control loops
/// are tasks: they run wherever the backend completes their waits, so a session needs no thread per victim.
/// </remarks>
public sealed class ProcHexSession : IAsyncDisposable, IControlHost
{
    private readonly IProcessTracer _tracer;
    private readonly ProcHexOptions _options;
    private readonly ILogger _logger;
    private readonly HandleTable _table;
    private readonly NotificationQueue _notifications;
    private readonly ProcHexMetrics _metrics;
    private readonly Dictionary<int, Task> _busyPids = [];
    private bool _disposed;

    /// <summary>A session over <paramref name="tracer"/>; <c>services.AddProcHex(...)</c> builds one for you.</summary>
    /// <param name="tracer">The backend that talks to the OS.</param>
    /// <param name="options">Cache size, default rendezvous, clock and demangler; the defaults when null.</param>
    /// <param name="loggerFactory">Where the session logs; nowhere when null.</param>
    /// <param name="metrics">Where it measures; <see cref="ProcHexMetrics.Shared"/> when null.</param>
    public ProcHexSession(IProcessTracer tracer, ProcHexOptions? options = null, ILoggerFactory? loggerFactory = null, ProcHexMetrics? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(tracer);
        _tracer = tracer;
        _options = options ?? new ProcHexOptions();
        ArgumentOutOfRangeException.ThrowIfNegative(_options.LruLimit);
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("ProcHex");
        _table = new HandleTable(_options.LruLimit);
        _metrics = metrics ?? ProcHexMetrics.Shared;
        _notifications = new NotificationQueue(_metrics);
    }

    /// <summary>The first pid created or grabbed by this session (DTrace's $target).</summary>
    public int? TargetPid { get; private set; }

    /// <summary>Called on the control loop whenever a victim's library list changes (S17).</summary>
    public LibraryListChangedHandler? LibraryListChanged { get; set; }

    /// <summary>Called on the control loop at preinit, postinit, main, fork, vfork done and exec of every controlled victim.</summary>
    public MilestoneHandler? MilestoneReached { get; set; }

    /// <summary>Called with the victim locked and stopped whenever a pending breakpoint is planted or goes (back) to pending.</summary>
    public PendingBreakpointChangedHandler? PendingBreakpointChanged { get; set; }

    /// <summary>The demangler SPECs are matched with (<see cref="ProcHexOptions.Demangler"/>).</summary>
    public ISymbolDemangler? Demangler => _options.Demangler;

    /// <summary>Every handle held, most recently used first.</summary>
    public IReadOnlyList<ProcessHandle> Handles
    {
        get
        {
            lock (_table.Gate)
            {
                return [.. _table.MostRecentFirst.Select(v => v.Handle)];
            }
        }
    }

    /// <summary>Notifications not yet taken.</summary>
    public int PendingNotifications => _notifications.Count;

    internal HandleTable Table => _table;

    /// <summary>
    /// S1: starts <paramref name="file"/> under control and returns once it waits at the rendezvous, with one
    /// reference. The victim is killed when its last reference is released.
    /// </summary>
    /// <param name="file">The program.</param>
    /// <param name="arguments">The complete argv, argv[0] included.</param>
    /// <param name="options">Rendezvous, environment, working directory, stdio, ASLR, resource limits and argv[0].</param>
    /// <param name="cancellationToken">Abandons the start (the victim is killed).</param>
    /// <exception cref="CreateFailedException">S2: why it could not be started or controlled.</exception>
    /// <exception cref="UnsupportedArchitectureException">The program is not x86-64; nothing of it is left running.</exception>
    public async Task<ProcessHandle> CreateAsync(
        string file,
        IReadOnlyList<string> arguments,
        CreateOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(file);
        ArgumentNullException.ThrowIfNull(arguments);
        ThrowIfDisposed();
        var rendezvous = options?.StopAt ?? _options.DefaultRendezvous;
        var stopAt = StopMask.For(rendezvous);
        using var activity = ProcHexDiagnostics.Source.StartActivity("prochex.create");
        activity?.SetTag("process.executable.path", file);
        activity?.SetTag("prochex.rendezvous", ProcHexDiagnostics.Snake(rendezvous.ToString()));
        try
        {
            ITracedProcess process;
            try
            {
                process = await _tracer.CreateAsync(StartRequest(file, arguments, options), cancellationToken);
            }
            catch (ForeignArchitectureException ex)
            {
                throw new UnsupportedArchitectureException($"failed to execute {file}: {ex.Message}", ex.Architecture, ex) { ErrorNumber = ex.ErrorNumber };
            }
            catch (ProcessStartException ex)
            {
                throw new CreateFailedException($"failed to execute {file}: {ex.Message}", ex) { Kind = ex.Kind, ErrorNumber = ex.ErrorNumber };
            }

            activity?.SetTag("process.pid", process.Pid);
            var victim = new Victim(process, GrabMode.Control, created: true, stopAt, _logger, _metrics) { Owner = this };
            await StartControlAsync(victim, static m => new CreateFailedException(m), cancellationToken);
            Register(victim);
            Log.Created(_logger, victim.Pid);
            return victim.Handle;
        }
        catch (Exception ex) when (ProcHexDiagnostics.Failed(activity, ex))
        {
            throw; // never taken: the filter marks the span and declines
        }
    }

    /// <summary>The port's request for <see cref="CreateAsync"/>: the options as given, argv[0] replaced by <see cref="CreateOptions.Argv0"/>.</summary>
    private static ProcessStartRequest StartRequest(string file, IReadOnlyList<string> arguments, CreateOptions? options)
    {
        if (options is null)
        {
            return new ProcessStartRequest(file, arguments);
        }

        IReadOnlyList<string> argv = options.Argv0 is { } argv0 ? [argv0, .. arguments.Skip(1)] : arguments;
        return new ProcessStartRequest(file, argv, options.Environment)
        {
            WorkingDirectory = options.WorkingDirectory,
            StandardInput = options.StandardInput,
            StandardOutput = options.StandardOutput,
            StandardError = options.StandardError,
            DisableAslr = options.DisableAslr,
            ResourceLimits = options.ResourceLimits,
        };
    }

    /// <summary>
    /// S3/S4/S5/S6: grabs <paramref name="pid"/>, or returns the handle already held for it with one more reference.
    /// For control, it returns once the victim waits at the grab rendezvous; it runs on when finally released.
    /// </summary>
    /// <exception cref="GrabFailedException">Why the process could not be grabbed or controlled.</exception>
    /// <exception cref="UnsupportedArchitectureException">The process is not x86-64; it was left untouched.</exception>
    public Task<ProcessHandle> GrabAsync(int pid, GrabMode mode = GrabMode.Control, CancellationToken cancellationToken = default) =>
        // Without a listener no span, and no second task per grab: a cached grab allocates what it did before spans.
        ProcHexDiagnostics.Source.HasListeners()
            ? GrabTracedAsync(pid, mode, cancellationToken)
            : GrabCoreAsync(pid, mode, activity: null, cancellationToken);

    private async Task<ProcessHandle> GrabTracedAsync(int pid, GrabMode mode, CancellationToken cancellationToken)
    {
        using var activity = ProcHexDiagnostics.Source.StartActivity("prochex.grab");
        activity?.SetTag("process.pid", pid);
        activity?.SetTag("prochex.grab.mode", ProcHexDiagnostics.Snake(mode.ToString()));
        try
        {
            return await GrabCoreAsync(pid, mode, activity, cancellationToken);
        }
        catch (Exception ex) when (ProcHexDiagnostics.Failed(activity, ex))
        {
            throw; // never taken: the filter marks the span and declines
        }
    }

    private async Task<ProcessHandle> GrabCoreAsync(int pid, GrabMode mode, Activity? activity, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        if (pid <= 0)
        {
            throw new GrabFailedException($"failed to grab pid {pid}: not a process id");
        }

        while (true)
        {
            Task? busy;
            Victim? staled = null, evicted = null;
            TaskCompletionSource? grabbing = null;
            lock (_table.Gate)
            {
                if (!_busyPids.TryGetValue(pid, out busy))
                {
                    if (_table.TryReuse(pid, mode, out staled) is { } cached)
                    {
                        activity?.SetTag("prochex.grab.cached", true);
                        Log.GrabbedCached(_logger, pid);
                        return cached.Handle;
                    }

                    staled = TakeIfUnreferenced(staled);
                    evicted = mode is GrabMode.Control or GrabMode.ControlOrReadOnly ? null : TakeEviction();
                    grabbing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    _busyPids[pid] = grabbing.Task;
                }
            }

            if (grabbing is null)
            {
                // Someone is grabbing or destroying this pid right now: wait, then look again.
                await busy!;
                continue;
            }

            try
            {
                return await GrabNewAsync(pid, mode, staled, evicted, cancellationToken);
            }
            finally
            {
                lock (_table.Gate)
                {
                    _busyPids.Remove(pid);
                }

                grabbing.TrySetResult();
            }
        }
    }

    /// <summary>
    /// When the process <paramref name="pid"/> names now started, in the clock of <see cref="ProcessHandle.StartTime"/>:
    /// with the pid, its identity (issue 17 item 3). Null when there is none or the backend cannot tell.
    /// </summary>
    public ulong? StartTimeOf(int pid)
    {
        ThrowIfDisposed();
        return pid > 0 ? _tracer.StartTimeOf(pid) : null;
    }

    /// <summary>
    /// <see cref="GrabAsync(int, GrabMode, CancellationToken)"/> of the process identified by <paramref name="pid"/> and
    /// <paramref name="startTime"/> (from <see cref="StartTimeOf"/>) only: if that process ended and the pid now
    /// names another, the grab is refused, before it starts or, when the pid was reused meanwhile, once the grab
    /// holds the newcomer, which is then let go as it was (issue 17 item 3).
    /// </summary>
    /// <exception cref="GrabFailedException">Why the process could not be grabbed, or that the pid was reused.</exception>
    /// <exception cref="UnsupportedArchitectureException">The process is not x86-64; it was left untouched.</exception>
    public async Task<ProcessHandle> GrabAsync(int pid, ulong startTime, GrabMode mode = GrabMode.Control, CancellationToken cancellationToken = default)
    {
        if (StartTimeOf(pid) is { } now && now != startTime)
        {
            throw Reused(pid);
        }

        var handle = await GrabAsync(pid, mode, cancellationToken);
        if (handle.StartTime is { } held && held != startTime)
        {
            await ReleaseAsync(handle);
            throw Reused(pid);
        }

        return handle;

        static GrabFailedException Reused(int pid) =>
            new($"failed to grab pid {pid}: the process it named has ended and pid {pid} now names another process") { Kind = TracerErrorKind.Gone };
    }

    /// <summary>S6: an upgraded read-only handle nobody references any more is destroyed now rather than at teardown.</summary>
    private Victim? TakeIfUnreferenced(Victim? staled)
    {
        if (staled is null)
        {
            return null;
        }

        Log.Upgrading(_logger, staled.Pid);
        if (staled.References != 0)
        {
            return null;
        }

        _table.Unregister(staled);
        return staled;
    }

    /// <summary>S7: before caching another read-only handle in a full cache, the LRU unreferenced one goes.</summary>
    private Victim? TakeEviction()
    {
        var evicted = _table.PickEviction();
        if (evicted is not null)
        {
            _table.Unregister(evicted);
        }

        return evicted;
    }

    /// <summary>S8: drops one reference; the last one destroys the handle unless it stays cached.</summary>
    /// <exception cref="InvalidHandleException">S23: the handle is unknown or already released.</exception>
    public async Task ReleaseAsync(ProcessHandle handle)
    {
        ArgumentNullException.ThrowIfNull(handle);
        var victim = handle.Victim;
        bool destroy;
        lock (_table.Gate)
        {
            // A cached handle nobody references is released too (S23): another release would drive its count negative.
            if (victim.Owner != this || !victim.Registered || victim.References == 0)
            {
                throw Unknown(handle);
            }

            destroy = _table.ReleaseReference(victim);
        }

        if (destroy)
        {
            await DestroyAsync(victim);
        }
    }

    /// <summary>S11: wakes a victim idling at a rendezvous; does nothing otherwise.</summary>
    public void Continue(ProcessHandle handle) => Held(handle).Continue();

    /// <summary>
    /// S21: exclusive use of the handle against its control loop until the returned scope is disposed.
    /// Locking a handle this caller already holds is a <see cref="LockMisuseException"/>, not a hang.
    /// </summary>
    public Task<VictimLockScope> LockAsync(ProcessHandle handle, CancellationToken cancellationToken = default)
    {
        var victim = Held(handle);
        if (victim.Lock.IsHeldBy(VictimLock.CurrentFlow))
        {
            throw new LockMisuseException($"pid {victim.Pid}: this caller already holds the lock");
        }

        return LockCoreAsync(victim, VictimLock.BeginNewFlow(), cancellationToken);
    }

    /// <summary>S21: releases a lock this caller holds; unlocking one it does not hold is a <see cref="LockMisuseException"/>.</summary>
    public void Unlock(ProcessHandle handle) => Held(handle).Lock.Release(VictimLock.CurrentFlow);

    /// <summary>Plants a client breakpoint; <paramref name="handler"/> runs on every hit (S14).</summary>
    public Task<ClientBreakpoint> SetBreakpointAsync(ProcessHandle handle, ulong address, BreakpointHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        var victim = Controlled(handle);
        return SetBreakpointCoreAsync(victim, address, handler, VictimLock.CurrentFlow);
    }

    /// <summary>
    /// Plants a client breakpoint on <c>object`symbol</c> (or a bare symbol, searched executable first). A GNU indirect
    /// function (IFUNC: <c>strlen</c>, <c>memcpy</c>...) gets it on the implementation its resolver chose, where the
    /// program's calls go, not on the resolver.
    /// </summary>
    /// <exception cref="SymbolNotFoundException">No such object or symbol.</exception>
    /// <exception cref="ProcHexException">An IFUNC whose implementation cannot be found yet (its objects not relocated,
    /// or its resolver not callable now); <see cref="SetPendingBreakpointAsync"/> waits for it instead.</exception>
    public Task<ClientBreakpoint> SetBreakpointAsync(ProcessHandle handle, string objectSymbol, BreakpointHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        var victim = Controlled(handle);
        var address = victim.LookupSymbol(objectSymbol);
        return SetBreakpointCoreAsync(victim, address, handler, VictimLock.CurrentFlow, IndirectFunctionAt(victim, objectSymbol, address));
    }

    private static IndirectFunction? IndirectFunctionAt(Victim victim, string objectSymbol, ulong address)
    {
        try
        {
            return victim.Process.Symbols.FindIndirectFunction(SymbolSpec.Parse(objectSymbol).Symbol, address);
        }
        catch (TracerException ex)
        {
            throw ProcHexException.FromBackend(ex);
        }
    }

    /// <summary>
    /// Sets a breakpoint on a SPEC that need not be defined yet: <c>object`symbol</c> or a bare symbol, C++ names
    /// raw or demangled (<c>ns::Class::method</c> for every overload, <c>ns::f(int)</c> for one), <c>*</c> and
    /// <c>?</c> wildcards. It is looked up in the current image now, again at every library-list change and in every
    /// image an exec brings, and planted wherever it is found (see <see cref="PendingBreakpoint"/>);
    /// <see cref="PendingBreakpointChanged"/> tells when. <paramref name="handler"/> runs on every hit, in any image.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="spec"/> is not <c>object`symbol</c> or <c>symbol</c>.</exception>
    public Task<PendingBreakpoint> SetPendingBreakpointAsync(ProcessHandle handle, string spec, BreakpointHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        return SetPendingCoreAsync(handle, spec, handler, preferred: null);
    }

    /// <summary>
    /// Counts the calls of a SPEC (as <see cref="SetPendingBreakpointAsync"/> finds it: now, at every library change, in
    /// every image an exec brings), in the victim wherever a site allows (issue 18): the function's entry jumps to code
    /// that increments a counter the tracer shares, so a call costs nanoseconds and no stop. A site counts with a trap
    /// instead when its first instructions cannot be moved, its size is unknown, someone else holds the process stopped
    /// when the SPEC is found, the backend cannot, or <paramref name="preferred"/> is <see cref="CountingMode.Trap"/>; each
    /// <see cref="PendingBreakpoint.Sites"/> entry says how it counts and why. <see cref="PendingBreakpoint.Hits"/>
    /// counts both, and reads without stopping the victim.
    /// </summary>
    /// <remarks>
    /// In-victim counters stay in while the victim is idle (S10): they never stop it, so idling has nothing to take
    /// back. Release takes them out of the text (S9), fork children get their text back before they run, vfork
    /// children count for their parent, and an exec takes them with the old image; counts survive all of these.
    /// </remarks>
    /// <exception cref="ArgumentException"><paramref name="spec"/> is not <c>object`symbol</c> or <c>symbol</c>.</exception>
    public Task<PendingBreakpoint> SetPendingCounterAsync(ProcessHandle handle, string spec, CountingMode preferred = CountingMode.InVictim) =>
        SetPendingCoreAsync(handle, spec, static _ => { }, preferred);

    private async Task<PendingBreakpoint> SetPendingCoreAsync(ProcessHandle handle, string spec, BreakpointHandler handler, CountingMode? preferred)
    {
        var (objectName, symbol) = SymbolSpec.Parse(spec);
        var victim = Controlled(handle);
        var flow = VictimLock.CurrentFlow;
        using var _ = await victim.Lock.EnterAsync(flow);
        if (victim.Lifecycle.ReleaseBegun)
        {
            throw new InvalidHandleException($"pid {victim.Pid}: the process handle was released");
        }

        if (!victim.IsAlive)
        {
            throw new ProcHexException($"pid {victim.Pid}: cannot set a breakpoint, the process is {victim.State}");
        }

        var breakpoint = new PendingBreakpoint(victim.Handle, spec, objectName, symbol, handler) { Preferred = preferred };
        victim.PendingBreakpoints.Add(victim, this, breakpoint);
        return breakpoint;
    }

    /// <summary>Removes a pending breakpoint from every address it is planted on; it is looked up no more.</summary>
    public async Task RemovePendingBreakpointAsync(PendingBreakpoint breakpoint)
    {
        ArgumentNullException.ThrowIfNull(breakpoint);
        var victim = Held(breakpoint.Handle);
        using var _ = await victim.Lock.EnterAsync(VictimLock.CurrentFlow);
        if (breakpoint.State != PendingBreakpointState.Removed)
        {
            victim.PendingBreakpoints.Remove(victim, breakpoint);
        }
    }

    /// <summary>Removes a client breakpoint, restoring the text if nobody else wants the address.</summary>
    public Task RemoveBreakpointAsync(ClientBreakpoint breakpoint)
    {
        ArgumentNullException.ThrowIfNull(breakpoint);
        var victim = Held(breakpoint.Handle);
        return RemoveBreakpointCoreAsync(victim, breakpoint, VictimLock.CurrentFlow);
    }

    /// <summary>S19: takes the oldest notification, waiting up to <paramref name="timeout"/>; null when none came.</summary>
    public Task<VictimNotification?> WaitForNotificationAsync(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        _notifications.DequeueAsync(timeout, _options.TimeProvider, cancellationToken);

    /// <summary>S19: takes the oldest notification if there is one.</summary>
    public bool TryTakeNotification(out VictimNotification notification) => _notifications.TryDequeue(out notification);

    /// <summary>S19: every notification, in order, as it arrives.</summary>
    public async IAsyncEnumerable<VictimNotification> ReadNotificationsAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            if (await _notifications.DequeueAsync(Timeout.InfiniteTimeSpan, _options.TimeProvider, cancellationToken) is { } next)
            {
                yield return next;
            }
        }
    }

    /// <summary>S22: destroys every handle, most recently used first.</summary>
    public async ValueTask DisposeAsync()
    {
        while (true)
        {
            Victim? next;
            lock (_table.Gate)
            {
                _disposed = true;
                next = _table.MostRecent;
                if (next is not null)
                {
                    _table.Unregister(next);
                }
            }

            if (next is null)
            {
                return;
            }

            await DestroyAsync(next);
        }
    }

    ProcHexMetrics IControlHost.Metrics => _metrics;

    void IControlHost.Notify(Victim victim, NotificationKind kind, string? message)
    {
        lock (_table.Gate)
        {
            if (!victim.Registered)
            {
                return;
            }

            _notifications.Enqueue(new VictimNotification(victim.Handle, kind, victim.Exit, message));
        }
    }

    private async Task<ProcessHandle> GrabNewAsync(int pid, GrabMode mode, Victim? staled, Victim? evicted, CancellationToken cancellationToken)
    {
        if (staled is not null)
        {
            await DestroyAsync(staled);
        }

        if (evicted is not null)
        {
            await DestroyAsync(evicted);
        }

        if (pid == Environment.ProcessId && mode != GrabMode.ReadOnly)
        {
            throw new GrabFailedException($"failed to grab pid {pid}: cannot control our own process");
        }

        ITracedProcess process;
        GrabException? refused = null;
        try
        {
            var access = mode == GrabMode.ReadOnly ? GrabAccess.ReadOnly : GrabAccess.Control;
            process = await _tracer.GrabAsync(pid, access, cancellationToken);
        }
        catch (ForeignArchitectureException ex)
        {
            throw new UnsupportedArchitectureException($"failed to grab pid {pid}: {ex.Message}", ex.Architecture, ex) { ErrorNumber = ex.ErrorNumber };
        }
        catch (GrabException ex) when (mode == GrabMode.ControlOrReadOnly && ex.Refusal is not null)
        {
            refused = ex;
            process = await GrabReadableAsync(pid, ex, cancellationToken);
        }
        catch (GrabException ex)
        {
            throw GrabFailed(pid, ex);
        }

        if (refused is not null)
        {
            Log.FellBackToReadOnly(_logger, pid, refused.Message);
            mode = GrabMode.ReadOnly;
        }
        else if (mode == GrabMode.ControlOrReadOnly)
        {
            mode = GrabMode.Control;
        }

        var victim = new Victim(process, mode, created: false, StopEvents.Grab, _logger, _metrics)
        {
            Owner = this,
            ReadOnlyReason = refused?.Message,
            ReadOnlyRefusal = refused?.Refusal,
        };
        if (mode == GrabMode.Control)
        {
            await StartControlAsync(victim, static m => new GrabFailedException(m), cancellationToken);
        }

        Register(victim);
        Log.Grabbed(_logger, pid, mode);
        return victim.Handle;
    }

    private static GrabFailedException GrabFailed(int pid, GrabException ex) =>
        new($"failed to grab pid {pid}: {ex.Message}", ex) { Kind = ex.Kind, ErrorNumber = ex.ErrorNumber, Refusal = ex.Refusal };

    /// <summary>
    /// Issue 22 item 5: control was refused; a read-only grab, kept only if the process's mappings can be read (the
    /// OS may refuse reading for the same reason it refused control). Otherwise the refusal of control is the answer.
    /// </summary>
    private async Task<ITracedProcess> GrabReadableAsync(int pid, GrabException refused, CancellationToken cancellationToken)
    {
        ITracedProcess process;
        try
        {
            process = await _tracer.GrabAsync(pid, GrabAccess.ReadOnly, cancellationToken);
        }
        catch (GrabException)
        {
            throw GrabFailed(pid, refused);
        }

        try
        {
            _ = process.Symbols.Objects;
            return process;
        }
        catch (TracerException ex)
        {
            process.Dispose();
            throw new GrabFailedException($"failed to grab pid {pid}: {refused.Message}; reading it is refused too ({ex.Message})", refused)
            {
                Kind = refused.Kind,
                ErrorNumber = refused.ErrorNumber,
                Refusal = refused.Refusal,
            };
        }
    }

    /// <summary>
    /// Starts the control loop and waits for the first rendezvous; if the victim dies or is lost first, lets it
    /// go and throws the S2 message. Nothing stays registered.
    /// </summary>
    private async Task StartControlAsync(Victim victim, Func<string, ProcHexException> failure, CancellationToken cancellationToken)
    {
        victim.ControlLoop = ControlLoop.Start(victim, this);
        bool parked;
        try
        {
            // Cancellation ends the rendezvous wait itself: Task.WaitAsync would complete through the thread pool,
            // off the caller's context, and a single-threaded simulation could not replay the run.
            using var cancel = cancellationToken.Register(static s => ((TaskCompletionSource<bool>)s!).TrySetCanceled(), victim.FirstRendezvous);
            parked = await victim.FirstRendezvous.Task;
        }
        catch (OperationCanceledException)
        {
            await DestroyAsync(victim);
            throw;
        }

        if (parked)
        {
            return;
        }

        var pid = victim.Pid;
        var reason = victim.State switch
        {
            VictimState.Lost => "process exec'd set-id or unobservable program",
            VictimState.Undead when victim.Exit is { Signaled: true } exit => $"process died from signal {exit.Signal}",
            VictimState.Undead when victim.Exit is { } exit => $"process exited with status {exit.Code}",
            _ => "control loop ended before the rendezvous",
        };
        await DestroyAsync(victim);
        throw failure($"failed to control pid {pid}: {reason}");
    }

    private void Register(Victim victim)
    {
        lock (_table.Gate)
        {
            _table.Register(victim);
            TargetPid ??= victim.Pid;
        }
    }

    /// <summary>
    /// S9: ends the control loop (waking it from any wait), purges the victim's notifications and lets it go:
    /// killed if we created it, left running if we grabbed it, left stopped if someone else stopped it.
    /// </summary>
    private async Task DestroyAsync(Victim victim)
    {
        using var activity = ProcHexDiagnostics.Source.StartActivity("prochex.release");
        activity?.SetTag("process.pid", victim.Pid);
        if (victim.ControlLoop is { } loop)
        {
            await victim.RequestQuitAsync(VictimLock.CurrentFlow);
            try
            {
                await loop;
            }
#pragma warning disable CA1031 // A loop that failed still has a victim to let go of.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Log.OperationFailed(_logger, victim.Pid, "control loop", ex.Message);
            }
        }

        _notifications.Purge(victim);
        var mode = victim.ReleaseMode;
        activity?.SetTag("prochex.release.mode", ProcHexDiagnostics.Snake(mode.ToString()));
        Log.Releasing(_logger, victim.Pid, mode);
        try
        {
            Retry.OnInterrupt((victim.Process, mode), static s => s.Process.Release(s.mode));
        }
        catch (TracerException ex)
        {
            _ = ProcHexDiagnostics.Failed(activity, ex);
            Log.OperationFailed(_logger, victim.Pid, "release", ex.Message);
        }
        finally
        {
            victim.Process.Dispose();

            // After the kill: a victim blocked on a full pipe is gone, not woken by EPIPE.
            victim.Process.Streams?.Dispose();
            victim.PendingBreakpoints.OnReleased(victim);
            victim.Lifecycle.Fire(VictimTrigger.Release);
        }
    }

    private static async Task<VictimLockScope> LockCoreAsync(Victim victim, object flow, CancellationToken cancellationToken)
    {
        await victim.Lock.AcquireAsync(flow, cancellationToken);
        return new VictimLockScope(victim, flow);
    }

    /// <summary>
    /// Plants under the victim lock; a GNU indirect <paramref name="function"/> is resolved under that same lock, so the
    /// implementation planted is the one the current image has.
    /// </summary>
    private static async Task<ClientBreakpoint> SetBreakpointCoreAsync(Victim victim, ulong address, BreakpointHandler handler, object flow, IndirectFunction? function = null)
    {
        using var _ = await victim.Lock.EnterAsync(flow);
        if (victim.Lifecycle.ReleaseBegun)
        {
            // Released meanwhile: its loop has taken (or will take) every trap out; one planted now would stay.
            throw new InvalidHandleException($"pid {victim.Pid}: the process handle was released");
        }

        if (!victim.IsAlive)
        {
            throw new ProcHexException($"pid {victim.Pid}: cannot plant a breakpoint, the process is {victim.State}");
        }

        if (function is not null)
        {
            address = victim.PendingBreakpoints.IndirectFunctions.Resolve(victim, function, out var why)
                ?? throw new ProcHexException($"pid {victim.Pid}: {why}; SetPendingBreakpointAsync plants it once it can be found");
        }

        var breakpoint = new ClientBreakpoint(victim.Handle, address, handler);
        // Idle or in a fork window the traps are out of the text (S10, S13): leaving that state plants this one.
        victim.Breakpoints.Add(address, Breakpoints.SiteRoles.None, breakpoint, victim.Lifecycle.MayWriteTraps);
        return breakpoint;
    }

    private static async Task RemoveBreakpointCoreAsync(Victim victim, ClientBreakpoint breakpoint, object flow)
    {
        using var _ = await victim.Lock.EnterAsync(flow);
        if (breakpoint.IsPlanted)
        {
            breakpoint.IsPlanted = false;
            victim.Breakpoints.RemoveClient(breakpoint, victim.TextInReach);
        }
    }

    private Victim Held(ProcessHandle handle)
    {
        ArgumentNullException.ThrowIfNull(handle);
        var victim = handle.Victim;
        return victim.Owner == this && victim.State != VictimState.Released ? victim : throw Unknown(handle);
    }

    private Victim Controlled(ProcessHandle handle)
    {
        var victim = Held(handle);
        return victim.ControlLoop is null
            ? throw new ProcHexException($"pid {victim.Pid}: breakpoints need a handle created or grabbed for control with a control loop")
            : victim;
    }

    private InvalidHandleException Unknown(ProcessHandle handle) =>
        new(handle.Victim.Owner == this
            ? $"pid {handle.Pid}: the process handle was released"
            : $"pid {handle.Pid}: the process handle does not belong to this session");

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);
}
