using System.Diagnostics;
using System.Globalization;

namespace ProcHex.Chaos;

/// <summary>
/// The invariants, checked against the kernel's view (/proc) after every operation. A transient state gets
/// <see cref="ChaosOptions.Grace"/> to settle (polled, with a deadline) before it counts.
/// </summary>
internal sealed partial class ChaosRun
{
    private readonly HashSet<int> _reportedTraced = [];
    private int? _ownThreadBaseline;

    private async Task CheckAsync()
    {
        DrainNotifications();
        foreach (var victim in _victims)
        {
            NoteDeath(victim);
            CheckDeathNotified(victim);
            CheckChurnLog(victim);
        }

        CheckHandleTable();
        foreach (var victim in _victims.Where(v => !v.Retired))
        {
            await CheckRunStateAsync(victim);
        }

        foreach (var (slot, victim) in _slots.Select((v, i) => (i, v)))
        {
            if (victim is not null && victim.DeadSince is not null && !victim.Handles.Any(h => h.References > 0))
            {
                Retire(slot, victim);
            }
        }

        await CheckChildrenAsync();
        if (_operation % 10 == 0)
        {
            CheckThreads(final: false);
            var failure = await Settle(() => Task.FromResult(TracedFailure(HeldPids())));
            if (failure is not null)
            {
                Violation(failure.Text);
                _reportedTraced.Add(failure.Pid);
            }
        }
    }

    /// <summary>The processes a controlling handle holds now: the only ones we may trace (besides the wake process).</summary>
    private HashSet<int> HeldPids() => [.. _victims.Where(v => v.HeldForControl).Select(v => v.Pid)];

    // ---- S19: every death notified exactly once --------------------------------------------------------

    private void DrainNotifications()
    {
        while (_session.TryTakeNotification(out var notification))
        {
            Record(notification);
        }
    }

    private void Record(VictimNotification notification)
    {
        Trace($"notification {notification.Kind} pid {notification.Pid} {notification.Exit?.ToString() ?? string.Empty} {notification.Message ?? string.Empty}");
        if (!_handles.TryGetValue(notification.Handle, out var model))
        {
            Violation($"S19: a notification for pid {notification.Pid} came with a handle the client was never given");
            return;
        }

        var victim = model.Victim;
        if (model.Destroyed)
        {
            Violation($"S9: a {notification.Kind} notification for {model.Name} of {victim.Name} came after its last release (destroy purges them)");
            return;
        }

        if (model.Kind != GrabMode.Control)
        {
            Violation($"S19: a {notification.Kind} notification for {model.Name} of {victim.Name}, grabbed {model.Kind} without a control loop");
            return;
        }

        switch (notification.Kind)
        {
            case NotificationKind.Exited:
                model.DeathNotices++;
                if (model.DeathNotices > 1)
                {
                    Violation($"S19: the death of {victim.Name} was notified {model.DeathNotices} times on {model.Name}");
                }

                if (IsAlive(victim))
                {
                    Violation($"S19: {model.Name} notified the death of {victim.Name} ({notification.Exit}), which is alive ({ProcView.Stat(victim.Pid)?.State})", victim, "alive-notified");
                }

                if (model.Handle.State != VictimState.Undead)
                {
                    Violation($"S13: {model.Name} notified an exit but is {model.Handle.State}, not Undead");
                }

                if (victim.Origin == Origin.Created && notification.Exit is { } exit)
                {
                    CheckExit(victim, exit.Code, exit.Signal);
                }

                break;
            case NotificationKind.Lost:
                Violation($"S19: control of {victim.Name} was lost: {notification.Message}", victim, "lost");
                break;
            default:
                Violation($"S17: an error notification for {victim.Name} though no callback is set: {notification.Message}");
                break;
        }
    }

    private void NoteDeath(VictimModel victim)
    {
        if (victim.DeadSince is not null)
        {
            return;
        }

        if (victim.StatusFile is { } file)
        {
            if (NannyReport.Read(file) is { Ended: true } report)
            {
                victim.DeadSince = Now;
                Trace($"{victim.Name} ended: exit {report.Code}, signal {report.Signal}");
                CheckExit(victim, report.Code!.Value, report.Signal!.Value);
            }
        }
        else if (!IsAlive(victim))
        {
            victim.DeadSince = Now;
            Trace($"{victim.Name} is gone");
        }
    }

    /// <summary>Our fixtures exit 0 (their self-checks pass) or die of the SIGKILL we sent; anything else is damage.</summary>
    private void CheckExit(VictimModel victim, int code, int signal)
    {
        if (victim.ExitChecked)
        {
            return;
        }

        victim.ExitChecked = true;
        if (signal == Native.SIGKILL && !victim.KilledByUs && !(victim.Origin == Origin.Created && victim.ReleasedControl))
        {
            Violation($"{victim.Name} was killed by a SIGKILL nobody sent", victim, "exit");
        }
        else if (signal is not (0 or Native.SIGKILL))
        {
            Violation($"{victim.Name} died of signal {signal}{(signal == 5 ? " (SIGTRAP: a breakpoint byte left in its text)" : string.Empty)}", victim, "exit");
        }
        else if (signal == 0 && code != 0)
        {
            Violation($"{victim.Name} exited with status {code}: the fixture's own check failed (calls lost, or a child died of our breakpoints)", victim, "exit");
        }
    }

    private void CheckDeathNotified(VictimModel victim)
    {
        if (victim.DeadSince is not { } dead)
        {
            return;
        }

        foreach (var model in victim.Handles.Where(h => h.Kind == GrabMode.Control && h.References > 0 && h.DeathNotices == 0))
        {
            // A victim that dies while idle at a rendezvous is heard of once it is continued (S10, S11).
            var since = Math.Max(dead, model.LastContinue);
            if (model.Handle.State != VictimState.Idle && Now - since > ChaosOptions.Grace.TotalMilliseconds)
            {
                Violation($"S19: {victim.Name} died {(Now - dead) / 1000.0:F1} s ago; {model.Name} is {model.Handle.State} and nothing was notified", victim, "unnotified");
            }
        }
    }

    private void CheckChurnLog(VictimModel victim)
    {
        if (victim.LogFile is not { } file || !File.Exists(file))
        {
            return;
        }

        var lines = File.ReadAllLines(file);
        for (var i = victim.LogLinesSeen; i < lines.Length; i++)
        {
            Violation($"a child of {victim.Name} did not end cleanly: {lines[i]} (0x5 in the low bits: killed by SIGTRAP, a breakpoint of ours in its text)");
        }

        victim.LogLinesSeen = lines.Length;
    }

    // ---- S5–S8, S23: no leaked handle -------------------------------------------------------------------

    private void CheckHandleTable()
    {
        var table = _session.Handles;
        var cached = 0;
        foreach (var handle in table)
        {
            if (!_handles.TryGetValue(handle, out var model))
            {
                Violation($"the session holds a handle for pid {handle.Pid} the client was never given");
                continue;
            }

            if (model.References == 0)
            {
                if (!handle.IsReadOnly)
                {
                    Violation($"S8: {model.Name} of {model.Victim.Name} is released by the client but still held by the session ({handle.State})", model.Victim, "leak-" + model.Name);
                }

                cached++;
            }
        }

        if (cached > _lruLimit)
        {
            Violation($"S7: {cached} unreferenced read-only handles are cached, over the limit of {_lruLimit}");
        }

        var present = table.ToHashSet(ReferenceEqualityComparer.Instance);
        foreach (var model in _handles.Values.Where(h => h.References > 0 && !h.Handle.IsReadOnly))
        {
            if (!present.Contains(model.Handle) || model.Handle.State == VictimState.Released)
            {
                Violation($"{model.Name} of {model.Victim.Name}: the client holds {model.References} reference(s) but the session dropped it ({model.Handle.State})", model.Victim, "dropped-" + model.Name);
            }
        }

        if (_wrongHandleHits > 0)
        {
            Violation($"S14: {_wrongHandleHits} breakpoint hits named another handle than the one the breakpoint was planted through");
            _wrongHandleHits = 0;
        }
    }

    // ---- run state: no victim left stopped that should run, none running that should stay stopped --------

    /// <summary>What the kernel must show for the victim now, or null when nothing definite can be said.</summary>
    private static string? Expectation(VictimModel victim, bool final)
    {
        if (victim.DeadSince is not null)
        {
            return null;
        }

        var held = !final && victim.HeldForControl;
        if (victim.Origin == Origin.Created && !held)
        {
            // S9: killed; left stopped (hang), untraced, only when someone else had stopped it. A hung victim is
            // then like any released one: it runs once someone else continues it.
            return !victim.MayHang ? "gone" : victim.ExternallyStopped ? "stopped-untraced" : "runs-untraced";
        }

        if (!held)
        {
            if (victim.KilledByUs)
            {
                return "gone";
            }

            var untraced = victim.EverControlled ? "-untraced" : string.Empty;
            return (victim.ExternallyStopped ? "stopped" : "runs") + untraced;
        }

        if (victim.ExternallyStopped || victim.HeldFor(GrabMode.ControlWithoutMonitor))
        {
            return "stopped";
        }

        var control = victim.Handles.First(h => h.Kind == GrabMode.Control && h.References > 0);
        return control.Handle.State switch
        {
            VictimState.Idle => "idle",
            VictimState.Undead or VictimState.Lost => null,
            _ => "runs",
        };
    }

    private async Task CheckRunStateAsync(VictimModel victim, bool final = false)
    {
        if (Expectation(victim, final) is not { } expected || victim.KilledByUs && expected != "gone")
        {
            return;
        }

        if (!final && expected == victim.LastRunKey && Now - victim.LastRunCheck < 1500)
        {
            return;
        }

        victim.LastRunKey = expected;
        victim.LastRunCheck = Now;
        // Each poll first asks whether the expectation still holds: a victim continued a moment ago may read Idle
        // once more before its control loop moves on and plants its breakpoints again.
        var failure = await Settle(async () => Expectation(victim, final) == expected ? await RunStateFailure(victim, expected) : null);
        if (failure is not null && IsStill(victim))
        {
            Violation($"{victim.Name}: {failure}", victim, "run-" + expected);
        }
    }

    /// <summary>The victim is still the process we started and alive: a death during the check excuses it.</summary>
    private static bool IsStill(VictimModel victim) =>
        ProcView.Stat(victim.Pid) is { } stat && stat.StartTime == victim.StartTime && stat.State is not ('Z' or 'X')
        && (victim.StatusFile is null || NannyReport.Read(victim.StatusFile) is not { Ended: true });

    private async Task<string?> RunStateFailure(VictimModel victim, string expected)
    {
        var stat = ProcView.Stat(victim.Pid);
        var same = stat is { } s && s.StartTime == victim.StartTime && s.State is not ('Z' or 'X');
        switch (expected)
        {
            case "gone":
                return same ? $"should be dead (S9: a created victim is killed on its last release), but is alive in state {stat!.Value.State}" : null;
            case "idle":
                if (!same)
                {
                    return null;
                }

                // The state is read after the text: still Idle means the text was read before any re-planting.
                return ProcView.CompareText(victim.Pid) is { } idleDifference && Expectation(victim, final: false) == "idle"
                    ? $"S10: idle at a rendezvous with a breakpoint in its text: {idleDifference}"
                    : null;
            case "stopped":
            case "stopped-untraced":
                if (!same)
                {
                    return null;
                }

                if (stat!.Value.State is not ('T' or 't'))
                {
                    return $"S20: should stay stopped (stopped by others, or held without a monitor), but is in state {stat.Value.State}";
                }

                if (victim.Fixture.LongRunning && await CallsAdvanceAsync(victim, 150) == true)
                {
                    return "S20: should stay stopped, but its calls counter advances";
                }

                return expected == "stopped-untraced" ? StoppedUntraced(victim, stat.Value) : null;
            default:
                if (!same)
                {
                    return null;
                }

                if (expected == "runs-untraced" && Untraced(victim) is { } traced)
                {
                    return traced;
                }

                if (victim.Fixture.LongRunning)
                {
                    return await CallsAdvanceAsync(victim, 100) == false
                        ? $"should run, but its calls counter does not advance (state {ProcView.Stat(victim.Pid)?.State})"
                        : null;
                }

                return stat!.Value.State is 'T' or 't' ? $"should run, but is in state {stat.Value.State}" : null;
        }
    }

    private static string? StoppedUntraced(VictimModel victim, ProcStat stat) =>
        stat.State != 'T' ? $"S9/S20: released while stopped by others it should stay stopped untraced (state T), but is in state {stat.State}"
        : Untraced(victim);

    /// <summary>A released victim: no tracer, and text equal to its files (no breakpoint byte left behind, S9, S16).</summary>
    private static string? Untraced(VictimModel victim)
    {
        var tracer = ProcView.TracerPid(victim.Pid);
        if (tracer is { } t and not 0)
        {
            return $"released, but still traced by tid {t}";
        }

        return ProcView.CompareText(victim.Pid) is { } difference ? $"released with a breakpoint byte left in its text: {difference}" : null;
    }

    /// <summary>Whether the fixture's calls counter changes within <paramref name="window"/> ms; null when it cannot be read.</summary>
    private async Task<bool?> CallsAdvanceAsync(VictimModel victim, int window)
    {
        var path = _fixtures.PathOf(victim.Fixture.Program);
        var symbol = _fixtures.CallsSymbol(victim.Fixture.Program);
        long? Read() => ProcView.Base(victim.Pid, path) is { } bias ? ProcView.ReadLong(victim.Pid, bias + symbol) : null;
        var first = Read();
        await Task.Delay(window, _stop);
        var second = Read();
        return first is null || second is null ? null : first != second;
    }

    /// <summary>Polls <paramref name="failure"/> until it reports nothing or the grace runs out; returns the last failure.</summary>
    private async Task<T?> Settle<T>(Func<Task<T?>> failure)
        where T : class
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var now = await failure();
            if (now is null || deadline.Elapsed > ChaosOptions.Grace)
            {
                return now;
            }

            await Task.Delay(20, _stop);
        }
    }

    // ---- no zombie, no stray child, no leaked thread -------------------------------------------------

    private async Task CheckChildrenAsync()
    {
        var failure = await Settle(() => Task.FromResult(ChildrenFailure()));
        if (failure is not null)
        {
            Violation(failure);
        }
    }

    /// <summary>Our children are the wake process, the created victims that live, and nothing else; none a zombie.</summary>
    private string? ChildrenFailure()
    {
        var self = Environment.ProcessId;
        var known = _victims.Where(v => v.Origin == Origin.Created).ToDictionary(v => v.Pid);
        foreach (var pid in ProcView.AllPids())
        {
            if (ProcView.Stat(pid) is not { } stat || stat.ParentPid != self)
            {
                continue;
            }

            if (stat.State is 'Z' or 'X')
            {
                var who = known.TryGetValue(pid, out var v) ? v.Name : $"pid {pid} ({stat.Command})";
                return $"zombie: our child {who} is not reaped";
            }

            if (!known.ContainsKey(pid) && stat.Command != "sleep")
            {
                return $"stray child: pid {pid} ({stat.Command}, state {stat.State}) is our child but no victim we hold or created (a cancelled create left behind?)";
            }
        }

        return null;
    }

    /// <summary>Threads not owned by the runtime (main, the ptrace owner) stay as many as after the first victim.</summary>
    private void CheckThreads(bool final)
    {
        var threads = ProcView.OwnThreads();
        var own = threads.Count(t => !t.Name.StartsWith(".NET ", StringComparison.Ordinal));
        if (_ownThreadBaseline is not { } baseline)
        {
            if (_victims.Any(v => v.Origin == Origin.Created || v.EverControlled))
            {
                _ownThreadBaseline = own;
            }

            return;
        }

        if (own > baseline)
        {
            Violation($"leaked threads: {own} threads not owned by the runtime, {baseline} after the first victim ({string.Join(", ", threads.Select(t => t.Name).Distinct())})");
            _ownThreadBaseline = own;
        }

        if (threads.Count > 150)
        {
            Violation(string.Create(CultureInfo.InvariantCulture, $"{threads.Count} threads in the runner{(final ? " after teardown" : string.Empty)}: blocked pool threads pile up"));
        }
    }

    // ---- teardown: S22, and what the session leaves behind ---------------------------------------------

    private async Task TearDownAsync()
    {
        Trace("teardown: dispose the session");
        try
        {
            await _session.DisposeAsync().AsTask().WaitAsync(ChaosOptions.HangLimit);
        }
        catch (TimeoutException)
        {
            Violation($"hang: disposing the session did not end within {ChaosOptions.HangLimit.TotalSeconds} s");
        }

        try
        {
            DrainNotifications();
            if (_session.Handles.Count != 0)
            {
                Violation($"S22: {_session.Handles.Count} handle(s) held after the session was disposed");
            }

            foreach (var model in _handles.Values.Where(h => h.Handle.State != VictimState.Released))
            {
                Violation($"S22: {model.Name} of {model.Victim.Name} is {model.Handle.State} after the session was disposed");
            }

            foreach (var victim in _victims)
            {
                NoteDeath(victim);
                CheckChurnLog(victim);
                if (victim.EverControlled)
                {
                    victim.MayHang |= victim.Origin == Origin.Created && victim.HeldForControl && victim.ExternallyStopped;
                    victim.ReleasedControl = true;
                }

                victim.LastRunKey = null;
                await CheckRunStateAsync(victim, final: true);
            }

            var failure = await Settle(() => Task.FromResult(TracedFailure([])));
            if (failure is not null)
            {
                Violation(failure.Text);
            }

            await CheckChildrenAsync();
            CheckThreads(final: true);
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        finally
        {
            CleanUp();
        }
    }

    /// <summary>
    /// Nothing is traced by a thread of ours but the held victims (<paramref name="held"/>; their threads have their
    /// pid as Tgid) and the owner's wake process: a fork or vfork child must be let go, a released victim too.
    /// </summary>
    private TracedProcess? TracedFailure(HashSet<int> held)
    {
        var ours = ProcView.OwnThreads().Select(t => t.Tid).ToHashSet();
        var self = Environment.ProcessId;
        foreach (var pid in ProcView.AllPids())
        {
            if (ProcView.TracerPid(pid) is { } tracer && ours.Contains(tracer) && ProcView.Stat(pid) is { } stat
                && !(stat.ParentPid == self && stat.Command == "sleep") && !held.Contains(pid) && !_reportedTraced.Contains(pid))
            {
                var parent = _victims.FirstOrDefault(v => v.Pid == stat.ParentPid)?.Name ?? $"pid {stat.ParentPid}";
                var victim = _victims.FirstOrDefault(v => v.Pid == pid);
                return new(pid, $"pid {pid} ({victim?.Name ?? stat.Command}, child of {parent}, state {stat.State}) is traced by us{(held.Count == 0 ? " after teardown" : ", though no handle holds it")}");
            }
        }

        return null;
    }

    /// <summary>Kills every process the run started (victims and nannies) and reaps our own children among them.</summary>
    public void CleanUp()
    {
        foreach (var victim in _victims)
        {
            if (ProcView.Stat(victim.Pid) is { } stat && stat.StartTime == victim.StartTime)
            {
                _ = Native.Kill(victim.Pid, Native.SIGKILL);
            }
        }

        var deadline = Stopwatch.StartNew();
        foreach (var victim in _victims)
        {
            if (victim.Origin == Origin.Created)
            {
                while (deadline.ElapsedMilliseconds < 2000 && Native.WaitPid(victim.Pid, out _, Native.WNOHANG) == 0)
                {
                    Thread.Sleep(5);
                }
            }
            else if (victim.Nanny is { } nanny)
            {
                // The nanny ends once its victim is dead; init reaps it.
                while (deadline.ElapsedMilliseconds < 2000 && ProcView.Stat(nanny) is { State: not 'Z' })
                {
                    Thread.Sleep(5);
                }
            }
        }
    }
}

/// <summary>A process traced by us that should not be, and the violation's text.</summary>
internal sealed record TracedProcess(int Pid, string Text);
