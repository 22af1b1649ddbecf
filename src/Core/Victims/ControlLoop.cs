using System.Diagnostics;
using System.Runtime.CompilerServices;
using ProcHex.Breakpoints;
using ProcHex.Ports;

namespace ProcHex.Victims;

/// <summary>
/// The control loop of one victim (dt_proc_control): set up tracing, park at the rendezvous, then wait for
/// stops and answer them until the victim dies, control is lost or the session destroys the handle.
/// </summary>
/// <remarks>
/// It is a task, not a thread: 1,000 victims cost 1,000 small state machines. It holds the victim lock for
/// everything except waiting for a stop and idling, so clients can lock the handle whenever the victim runs
/// (S13, S21). Port calls that throw <see cref="TracerException"/> are logged and the loop carries on: the
/// next wait reports the death that usually caused them.
/// </remarks>
internal sealed partial class ControlLoop
{
    private readonly Victim _victim;
    private readonly IControlHost _host;
    private readonly HitScope _hitScope;
    private readonly ProcHexMetrics _metrics;

    /// <summary>The create or grab span this loop was started under: later spans link to it rather than nest in it.</summary>
    private readonly ActivityContext _origin;
    private IRtldAgent? _rtld;
    private IReadOnlyList<LoadedObject> _knownObjects = [];
    private object _flow = null!;

    private ControlLoop(Victim victim, IControlHost host)
    {
        _victim = victim;
        _host = host;
        _hitScope = new HitScope(victim.Process);
        _metrics = host.Metrics;
        _origin = Activity.Current?.Context ?? default;
    }

    private ITracedProcess Process => _victim.Process;

    /// <summary>Starts the loop; the returned task ends when the loop does.</summary>
    public static Task Start(Victim victim, IControlHost host) => new ControlLoop(victim, host).RunAsync();

    private async Task RunAsync()
    {
        // The loop outlives the create or grab that started it: what it does later is no part of that span.
        Activity.Current = null;
        _flow = VictimLock.BeginNewFlow();
        var notify = false;
        try
        {
            await _victim.Lock.AcquireAsync(_flow);
            try
            {
                await SetUpAsync();
            }
            finally
            {
                _victim.Lock.Release(_flow);
            }

            while (_victim.Lifecycle.IsLive)
            {
                var (stop, waitFailed) = await NextStopAsync();
                await _victim.Lock.AcquireAsync(_flow);
                try
                {
                    notify = await HandleAsync(stop, waitFailed);
                }
                finally
                {
                    _victim.Lock.Release(_flow);
                }
            }
        }
        finally
        {
            await FinishAsync(notify);
        }
    }

    /// <summary>
    /// Waits for the next stop. An interrupted wait is retried; any other failure means the backend can no longer
    /// tell us what the victim does, which is a loss of control (notified like one), never a silently dead loop.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))] // awaited once per stop: no box per stop
    private async ValueTask<(StopEvent Stop, bool WaitFailed)> NextStopAsync()
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return (await Process.WaitForStopAsync(CancellationToken.None), false);
            }
            catch (TracerException ex) when (Retry.MayRetry(ex, attempt))
            {
            }
            catch (TracerException ex)
            {
                return (StopEvent.Lost(_victim.Pid, $"waiting for the victim failed: {ex.Message}"), true);
            }
        }
    }

    /// <summary>S12: trace what we need, plant the rtld and main breakpoints, park at the create or grab rendezvous.</summary>
    private async Task SetUpAsync()
    {
        try
        {
            // Without it fork and exec go unseen and a child inherits our traps: a transient failure must not stick.
            Retry.Persistently(Process, static p => p.BeginControl());
        }
        catch (TracerException ex)
        {
            Log.OperationFailed(_victim.Logger, _victim.Pid, "begin control", ex.Message);
        }
        AttachToImage(afterExec: false);
        // A grabbed victim has its libraries; a created one waits for the linker to bring them (preinit).
        _victim.PendingBreakpoints.InitialLibrariesLoaded = !_victim.IsCreated || _rtld is null;
        _victim.PendingBreakpoints.IndirectFunctions.Callable = !_victim.IsCreated;
        await StopIfRequestedAsync(_victim.IsCreated ? StopEvents.Create : StopEvents.Grab);
        Resume();
    }

    /// <summary>
    /// Answers one wait result (S13). Returns true when the loop must end with a notification. A loss that is only
    /// our failed wait (<paramref name="waitFailed"/>) leaves the victim running on, every trap planted: a state of
    /// its own, whose text is still ours to restore.
    /// </summary>
    private async ValueTask<bool> HandleAsync(StopEvent stop, bool waitFailed)
    {
        _metrics.StopAnswered(stop);
        switch (stop.Kind)
        {
            case StopKind.Exited:
                _victim.Exit = stop.Exit;
                _victim.Lifecycle.Fire(VictimTrigger.Exit);
                Log.Died(_victim.Logger, _victim.Pid, stop.Exit);
                return true;
            case StopKind.Lost:
                _victim.LostReason = stop.Message ?? "control lost";
                _victim.Lifecycle.Fire(waitFailed ? VictimTrigger.WaitFailed : VictimTrigger.LoseControl);
                _victim.PendingBreakpoints.FreezeCounts(_victim);
                Log.Lost(_victim.Logger, _victim.Pid, _victim.LostReason);
                return true;
        }

        Log.StoppedShowing(_victim.Logger, _victim.Pid, stop.Reason, stop.ProgramCounter, stop.ThreadId);
        if (stop.Reason == StopReason.StoppedByOthers)
        {
            HoldForOthers();
            return false;
        }

        if (stop.Reason == StopReason.ResumedByOthers && _victim.Lifecycle.IsHeldByOthers)
        {
            _victim.Lifecycle.Fire(VictimTrigger.ResumeByOthers);
        }
        else if (_victim.Lifecycle.IsRunning)
        {
            _victim.Lifecycle.Fire(VictimTrigger.Stop);
        }

        switch (stop.Reason)
        {
            case StopReason.Breakpoint:
                await OnBreakpointAsync(stop);
                break;
            case StopReason.ForkStarting:
                _victim.Lifecycle.Fire(VictimTrigger.ForkStart);
                break;
            case StopReason.ForkDone:
            case StopReason.VforkDone:
                _victim.Lifecycle.Fire(VictimTrigger.ForkEnd);
                Report(stop.Reason == StopReason.ForkDone ? MilestoneKind.ForkFollowed : MilestoneKind.VforkDone, stop.ThreadId);
                break;
            case StopReason.ExecDone:
                AttachToImage(afterExec: true);
                Report(MilestoneKind.ExecDone, stop.ThreadId);
                // Pending breakpoints follow the program through wrappers: look them up in the new image.
                _victim.PendingBreakpoints.OnExec(_victim, _host);
                _victim.PendingBreakpoints.InitialLibrariesLoaded = _rtld is null;
                _victim.PendingBreakpoints.ResolveAll(_victim, _host);
                break;
        }

        Resume();
        return false;
    }

    /// <summary>S20: leave it stopped for whoever stopped it; a tracer crash now must leave it stopped too.</summary>
    private void HoldForOthers()
    {
        if (!_victim.Lifecycle.IsHeldByOthers)
        {
            _victim.Lifecycle.Fire(VictimTrigger.StopByOthers);
        }

        Log.HeldByOthers(_victim.Logger, _victim.Pid);
        try
        {
            // Without it the resume is never heard and destroy would leave a resumed victim stopped (hang).
            Retry.Persistently(Process, static p => p.AwaitExternalResume());
        }
        catch (TracerException ex)
        {
            Log.OperationFailed(_victim.Logger, _victim.Pid, "await external resume", ex.Message);
        }
    }

    /// <summary>S14: find the breakpoint, count the hit, run its handlers, step over it keeping it planted.</summary>
    private async ValueTask OnBreakpointAsync(StopEvent stop)
    {
        if (!_victim.Breakpoints.TryGet(stop.ProgramCounter, out var site))
        {
            Log.SpuriousBreakpoint(_victim.Logger, _victim.Pid, stop.ProgramCounter);
            return;
        }

        site.Hits++;
        Log.BreakpointHit(_victim.Logger, _victim.Pid, site.Address, site.Hits);
        if (!site.Clients.IsEmpty)
        {
            _metrics.TrapHit();
        }

        foreach (var client in site.Clients)
        {
            RunClientHandler(client, stop.ThreadId, site.Hits);
        }

        if ((site.Roles & SiteRoles.Rtld) != 0)
        {
            await OnRtldEventAsync(stop.ThreadId);
        }

        if ((site.Roles & SiteRoles.LibcStartMain) != 0)
        {
            await OnLibcStartMainAsync(site, stop.ThreadId);
        }

        if ((site.Roles & SiteRoles.Main) != 0)
        {
            OnMain();
            Report(MilestoneKind.Main, stop.ThreadId);
            await StopIfRequestedAsync(StopEvents.Main);
        }

        // A handler may have removed the last user of this address: then the original text is back already.
        if (_victim.Breakpoints.TryGet(stop.ProgramCounter, out site) && site.Active && !_victim.Lifecycle.IsReleasing)
        {
            Try((stop.ThreadId, site.Patch), "step over breakpoint", static (p, step) => p.StepOverBreakpoint(step.ThreadId, step.Patch));
        }
    }

    private void RunClientHandler(ClientBreakpoint client, int threadId, long siteHits)
    {
        client.Hits++;
        var context = _hitScope.Open(threadId);
        try
        {
            client.Handler(new BreakpointHit(_victim.Handle, client.Address, threadId, siteHits) { Context = context });
        }
#pragma warning disable CA1031 // A client's bug must not take the control loop (and the victim) down with it.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.HandlerFailed(_victim.Logger, ex, _victim.Pid, client.Address);
        }
        finally
        {
            _hitScope.Close();
        }
    }

    /// <summary>
    /// From main on a static executable's indirect functions are relocated too (by <c>__libc_start_main</c>): SPECs
    /// naming them, pending until now, are looked up again.
    /// </summary>
    private void OnMain()
    {
        var pending = _victim.PendingBreakpoints;
        if (!pending.IndirectFunctions.Callable)
        {
            pending.IndirectFunctions.Callable = true;
            pending.ResolveAll(_victim, _host);
        }
    }

    /// <summary>S17: what the dynamic linker just did.</summary>
    private async ValueTask OnRtldEventAsync(int threadId)
    {
        if (_rtld is null)
        {
            return;
        }

        RtldEventMessage message;
        try
        {
            message = _rtld.ReadEventMessage();
        }
        catch (TracerException ex)
        {
            Log.RtldUnavailable(_victim.Logger, _victim.Pid, "failed to read the event message: " + ex.Message);
            return;
        }

        Log.RtldEvent(_victim.Logger, _victim.Pid, message.Kind, message.State);
        if (message.State != RtldState.Consistent)
        {
            return;
        }

        using (var activity = StartLibraryListChange(message.Kind))
        {
            RefreshSymbols();
            var removed = ReportLibraryChanges(message.Kind, activity);
            _victim.PendingBreakpoints.InitialLibrariesLoaded = true;
            _victim.PendingBreakpoints.IndirectFunctions.Callable = true;
            _victim.PendingBreakpoints.OnLibrariesChanged(_victim, _host, removed);
            if (message.Kind == RtldEventKind.Preinit)
            {
                OnInitialLibraries();
            }
        }

        switch (message.Kind)
        {
            case RtldEventKind.Preinit:
                Report(MilestoneKind.Preinit, threadId);
                await StopIfRequestedAsync(StopEvents.Preinit);
                break;
            case RtldEventKind.Postinit:
                Report(MilestoneKind.Postinit, threadId);
                await StopIfRequestedAsync(StopEvents.Postinit);
                break;
        }
    }

    /// <summary>
    /// A <c>prochex.library_list.change</c> span for one consistent rtld event, or null while nobody listens. It is a
    /// root linked to the create or grab span: the loop runs on long after that ended.
    /// </summary>
    private Activity? StartLibraryListChange(RtldEventKind kind)
    {
        if (!ProcHexDiagnostics.Source.HasListeners())
        {
            return null;
        }

        var activity = ProcHexDiagnostics.Source.StartActivity(
            "prochex.library_list.change",
            ActivityKind.Internal,
            parentContext: default,
            tags: null,
            links: _origin == default ? null : [new ActivityLink(_origin)]);
        activity?.SetTag("process.pid", _victim.Pid);
        activity?.SetTag("prochex.rtld.event", ProcHexDiagnostics.Snake(kind.ToString()));
        return activity;
    }

    /// <summary>Tells the client which objects came and went since it last heard; its failure becomes a notification. Returns those that went.</summary>
    private List<LoadedObject> ReportLibraryChanges(RtldEventKind kind, Activity? activity)
    {
        var now = Process.Symbols.Objects;
        var added = now.Where(o => !_knownObjects.Contains(o)).ToList();
        var removed = _knownObjects.Where(o => !now.Contains(o)).ToList();
        _knownObjects = now;
        activity?.SetTag("prochex.libraries.added", added.Count);
        activity?.SetTag("prochex.libraries.removed", removed.Count);
        if ((added.Count == 0 && removed.Count == 0) || _host.LibraryListChanged is not { } callback)
        {
            return removed;
        }

        try
        {
            callback(new LibraryListChange(_victim.Handle, kind, added, removed));
        }
#pragma warning disable CA1031 // DTrace turns a probe-creation failure into a notification, not a crash.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _ = ProcHexDiagnostics.Failed(activity, ex);
            _host.Notify(_victim, NotificationKind.Error, ex.Message);
        }

        return removed;
    }

    /// <summary>Tells the client a milestone was passed; like the library callback, its failure becomes a notification.</summary>
    private void Report(MilestoneKind kind, int threadId)
    {
        if (_host.MilestoneReached is not { } callback)
        {
            return;
        }

        try
        {
            callback(new Milestone(_victim.Handle, kind, threadId));
        }
#pragma warning disable CA1031 // A client's bug must not take the control loop (and the victim) down with it.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _host.Notify(_victim, NotificationKind.Error, ex.Message);
        }
    }

    /// <summary>
    /// Enables rtld events and plants their breakpoints, and looks for main, after attach or after an exec
    /// (which first drops every breakpoint, restoring only those planted into the new image, and re-reads it).
    /// </summary>
    private void AttachToImage(bool afterExec)
    {
        if (afterExec)
        {
            Log.ExecCompleted(_victim.Logger, _victim.Pid);
            // Traps from the old image are gone with it (the backend writes nothing for them), but a client may have
            // planted into the new image before this loop saw the exec: those must come out, not be forgotten.
            _victim.Breakpoints.Clear(restoreText: true);
            _knownObjects = [];
            Try("reset symbols", static p => p.Symbols.Reset());
        }

        _rtld = OpenRtld();
        RefreshSymbols();
        if (_rtld is null)
        {
            // No dynamic linker (a static executable): preinit and postinit never come, main still does.
            _victim.StopMask.Replace(StopEvents.Preinit, StopEvents.Main);
            _victim.StopMask.Replace(StopEvents.Postinit, StopEvents.Main);
        }

        FindMain(afterExec);
    }

    private IRtldAgent? OpenRtld()
    {
        try
        {
            var rtld = Process.OpenRtldAgent();
            if (rtld is null)
            {
                Log.RtldUnavailable(_victim.Logger, _victim.Pid, "no dynamic linker");
                return null;
            }

            if (!rtld.EnableEvents())
            {
                Log.RtldUnavailable(_victim.Logger, _victim.Pid, "failed to enable rtld events");
                return null;
            }

            var planted = new HashSet<ulong>();
            foreach (var kind in (ReadOnlySpan<RtldEventKind>)[RtldEventKind.Preinit, RtldEventKind.Postinit, RtldEventKind.DlActivity])
            {
                if (rtld.TryGetEventAddress(kind, out var address) && planted.Add(address))
                {
                    _victim.Breakpoints.Add(address, SiteRoles.Rtld, client: null, plant: true);
                }
            }

            return rtld;
        }
        catch (TracerException ex)
        {
            Log.RtldUnavailable(_victim.Logger, _victim.Pid, ex.Message);
            return null;
        }
    }

    /// <summary>
    /// dt_proc_stop: if <paramref name="why"/> was requested, park idle with every breakpoint out of the text
    /// until Continue (or destroy), then put them back (S10).
    /// </summary>
    private async ValueTask StopIfRequestedAsync(StopEvents why)
    {
        // Held for someone else, it is theirs to stop and continue: no rendezvous of ours in the middle of that.
        if (_victim.Lifecycle.IsReleasing || _victim.Lifecycle.IsHeldByOthers || !_victim.StopMask.TryConsume(why))
        {
            return;
        }

        _victim.Lifecycle.Fire(VictimTrigger.Park);
        Log.Parked(_victim.Logger, _victim.Pid, why);
        var idle = _victim.BeginIdle();
        if (!_victim.FirstRendezvous.Task.IsCompleted)
        {
            _victim.RendezvousReached = RendezvousOf(why);
        }

        _victim.FirstRendezvous.TrySetResult(true);

        _victim.Lock.Release(_flow);
        try
        {
            await idle;
        }
        finally
        {
            await _victim.Lock.AcquireAsync(_flow);
        }

        _victim.Lifecycle.Fire(VictimTrigger.Continue);
    }

    private void Resume()
    {
        if (_victim.Lifecycle.IsReleasing || _victim.Lifecycle.IsOver)
        {
            return;
        }

        if (_victim.Lifecycle.IsHeldByOthers)
        {
            // A stop of a thread the backend held while someone else's stop gathered (a vfork's end, a breakpoint
            // taken just before): answered, but not resumed. Their resume's report resumes it with the rest (S20).
            // Once the lifecycle refused this resume and the loop died, leaving the victim in a ptrace stop for good
            // (chaos seed 3, linux simulation seed 67588).
            Log.AnsweredWhileHeld(_victim.Logger, _victim.Pid);
            return;
        }

        Try("set running", static p => p.Resume());
        _victim.Lifecycle.Fire(VictimTrigger.Resume);
    }

    private void RefreshSymbols() => Try("refresh symbols", static p => p.Symbols.Refresh());

    /// <summary>
    /// S9, S20: a loop told to quit stops reading at the stop that woke it, but stops already queued behind it still
    /// say where the victim is. A resume by others that raced the release, left unread, makes a victim nobody holds
    /// look held by others: destroy would leave it stopped (hang) instead of killing or running it. So the stops that
    /// are ready are read, without waiting, and those about who holds the victim or whether it lives are answered as
    /// the loop would; the rest are moot, the release takes every breakpoint out. True when it turned out dead or lost.
    /// </summary>
    private async ValueTask<bool> AnswerReadyStopsAsync()
    {
        var notify = false;
        while (_victim.Lifecycle.IsReleasing && TakeReadyStop() is { } stop)
        {
            if (stop.Kind != StopKind.Stopped || stop.Reason is StopReason.StoppedByOthers or StopReason.ResumedByOthers)
            {
                notify |= await HandleAsync(stop, waitFailed: false);
            }
        }

        return notify;
    }

    private StopEvent? TakeReadyStop()
    {
        try
        {
            // Like the stop request that woke the loop: one transient failure must not decide how the victim is let go.
            return Retry.Persistently(Process, static p => p.TakeReadyStop());
        }
        catch (TracerException ex)
        {
            Log.OperationFailed(_victim.Logger, _victim.Pid, "take a ready stop", ex.Message);
            return null;
        }
    }

    /// <summary>The loop's end: notify once, take the breakpoints out (S16), let destroy know we are done.</summary>
    private async Task FinishAsync(bool notify)
    {
        // A backend may run this loop on its own event thread (Linux answers stops on its ptrace owner thread):
        // whoever awaits the loop's end (a release, the session's disposal) must not continue on that thread. A pool
        // thread is fine, and under a synchronization context (the deterministic simulation) awaiters resume on it.
        if (SynchronizationContext.Current is null && !Thread.CurrentThread.IsThreadPoolThread)
        {
            await Task.Yield();
        }

        await _victim.Lock.AcquireAsync(_flow);
        try
        {
            notify |= await AnswerReadyStopsAsync();
            _victim.Breakpoints.Clear(restoreText: _victim.TextInReach);
        }
        finally
        {
            _victim.Lock.Release(_flow);
        }

        if (notify)
        {
            _host.Notify(
                _victim,
                _victim.State == VictimState.Lost ? NotificationKind.Lost : NotificationKind.Exited,
                _victim.LostReason);
        }

        _victim.FirstRendezvous.TrySetResult(false);
    }

    private void Try(string operation, Action<ITracedProcess> action) =>
        Try(action, operation, static (p, a) => a(p));

    private void Try<TState>(TState state, string operation, Action<ITracedProcess, TState> action)
    {
        try
        {
            Retry.OnInterrupt((Process, state, action), static s => s.action(s.Process, s.state));
        }
        catch (TracerException ex)
        {
            Log.OperationFailed(_victim.Logger, _victim.Pid, operation, ex.Message);
        }
    }
}
