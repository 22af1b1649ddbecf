using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;

namespace ProcHex.Chaos;

/// <summary>The options of one run.</summary>
internal sealed record ChaosOptions(int Seed, double Seconds, long MaxOperations, bool Trace)
{
    public const int Slots = 6;

    /// <summary>How long the kernel gets to settle before a transient state counts as a violation.</summary>
    public static readonly TimeSpan Grace = TimeSpan.FromSeconds(3);

    /// <summary>A public call that has not returned after this long is a hang.</summary>
    public static readonly TimeSpan HangLimit = TimeSpan.FromSeconds(20);
}

/// <summary>A public call did not return: the run cannot go on meaningfully.</summary>
internal sealed class HangException(string message) : Exception(message);

/// <summary>
/// One chaos run: a session on the Linux backend, up to six victim slots, and one operation at a time drawn from the
/// seed (four numbers per operation, whatever happened before, so the sequence is the seed's alone), each followed by
/// the invariant checks of <c>ChaosRun.Checks.cs</c>.
/// </summary>
internal sealed partial class ChaosRun
{
    private static readonly string[] BreakpointSpecs =
        ["a.out`work", "work", "a.out`main", "libc.so.6`usleep", "libc.so.6`clock_nanosleep", "libc.so.6`pthread_create"];

    private readonly ChaosOptions _options;
    private readonly ProcHexSession _session;
    private readonly Fixtures _fixtures;
    private readonly int _lruLimit;
    private readonly Random _random;
    private readonly VictimModel?[] _slots = new VictimModel?[ChaosOptions.Slots];
    private readonly List<VictimModel> _victims = [];
    private readonly Dictionary<ProcessHandle, HandleModel> _handles = new(ReferenceEqualityComparer.Instance);
    private readonly Queue<string> _recent = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly CancellationToken _stop;
    private int _nextVictim, _nextHandle;
    private long _operation;
    private int _wrongHandleHits;

    public ChaosRun(ChaosOptions options, ProcHexSession session, Fixtures fixtures, int lruLimit, CancellationToken stop)
    {
        _options = options;
        _session = session;
        _fixtures = fixtures;
        _lruLimit = lruLimit;
        _stop = stop;
        _random = new Random(options.Seed);
    }

    public long Operations => _operation;

    public List<string> Violations { get; } = [];

    private long Now => _clock.ElapsedMilliseconds;

    /// <summary>Runs operations until the time or operation budget is spent, then tears down and checks what is left.</summary>
    public async Task RunAsync()
    {
        var deadline = TimeSpan.FromSeconds(_options.Seconds);
        try
        {
            while (_clock.Elapsed < deadline && _operation < _options.MaxOperations && !_stop.IsCancellationRequested)
            {
                var draw = (Kind: _random.Next(100), Slot: _random.Next(ChaosOptions.Slots), A: _random.Next(1000), B: _random.Next(1000));
                _operation++;
                try
                {
                    await OperationAsync(draw.Kind, draw.Slot, draw.A, draw.B);
                    await CheckAsync();
                }
                catch (HangException ex)
                {
                    Violation($"hang: {ex.Message}");
                    return;
                }
                catch (OperationCanceledException) when (_stop.IsCancellationRequested)
                {
                    return;
                }
            }
        }
        finally
        {
            await TearDownAsync();
        }
    }

    private async Task OperationAsync(int kind, int slot, int a, int b)
    {
        switch (kind)
        {
            case < 12:
                await CreateAsync(slot, a, b);
                break;
            case < 20:
                await SpawnAsync(slot, a, b);
                break;
            case < 32:
                await GrabAsync(slot, a);
                break;
            case < 44:
                await ReleaseAsync(slot, b);
                break;
            case < 52:
                Continue(slot);
                break;
            case < 58:
                await LockAsync(slot, b);
                break;
            case < 68:
                await SetBreakpointAsync(slot, a, b);
                break;
            case < 73:
                await RemoveBreakpointAsync(slot, b);
                break;
            case < 78:
                Signal(slot, Native.SIGKILL, "SIGKILL");
                break;
            case < 85:
                Signal(slot, Native.SIGSTOP, "SIGSTOP");
                break;
            case < 91:
                Signal(slot, Native.SIGCONT, "SIGCONT");
                break;
            case < 94:
                Signal(slot, Native.SIGSTOP, "SIGSTOP");
                await Task.Delay(b % 5, _stop);
                Signal(slot, Native.SIGCONT, "SIGCONT");
                break;
            case < 97:
                await WaitForNotificationAsync(a);
                break;
            default:
                Trace($"sleep {a % 50} ms");
                await Task.Delay(a % 50, _stop);
                break;
        }
    }

    /// <summary>Twelve programs: the long-running ones (sleeper, churn in every mode) are drawn most often.</summary>
    private static FixtureChoice Choose(int a, int b) => (a % 12) switch
    {
        0 or 6 => new("sleeper", [], true),
        1 => new("churn", ["{log}", "threads"], true),
        2 => new("churn", ["{log}", "fork"], true),
        3 => new("churn", ["{log}", "vfork"], true),
        4 => new("churn", ["{log}", "exec", (3 + (b % 8)).ToString(CultureInfo.InvariantCulture)], true),
        5 => new("churn", ["{log}", "mix"], true),
        7 => new("ticker", [(10 + (b % 40)).ToString(CultureInfo.InvariantCulture)], false),
        8 => new("loop", [(b % 3 * 1000).ToString(CultureInfo.InvariantCulture)], false),
        9 => new("threads", ["400"], false),
        10 => new("fork", ["20"], false),
        _ => b % 2 == 0 ? new("exec", ["3"], false) : new("vfork", ["3"], false),
    };

    private static string[] Arguments(FixtureChoice fixture, string log) => [.. fixture.Arguments.Select(a => a == "{log}" ? log : a)];

    private async Task CreateAsync(int slot, int a, int b)
    {
        if (_slots[slot] is not null)
        {
            return;
        }

        var fixture = Choose(a, b);
        Rendezvous? at = (b / 10 % 5) is var r && r < 4 ? (Rendezvous)r : null;
        var cancelAfter = a / 100 % 8 == 0 ? b % 40 : (int?)null;
        var id = ++_nextVictim;
        var log = Path.Combine(_fixtures.Dir, $"v{id}.log");
        var path = _fixtures.PathOf(fixture.Program);
        Trace($"create v{id} {fixture} at {at?.ToString() ?? "default"}{(cancelAfter is { } c ? $", cancelled after {c} ms" : string.Empty)}");
        using var cancel = cancelAfter is { } ms ? new CancellationTokenSource(ms) : new CancellationTokenSource();
        ProcessHandle handle;
        try
        {
            handle = await Guard(_session.CreateAsync(path, [path, .. Arguments(fixture, log)], new CreateOptions { StopAt = at }, cancel.Token), "CreateAsync");
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested && !_stop.IsCancellationRequested)
        {
            // The victim the cancelled create started must be killed and reaped: the stray-children check sees to it.
            Trace($"  cancelled");
            return;
        }
        catch (CreateFailedException ex)
        {
            Violation($"S1: create of {fixture} failed: {ex.Message}");
            return;
        }

        var victim = new VictimModel
        {
            Id = id,
            Pid = handle.Pid,
            StartTime = ProcView.Stat(handle.Pid)?.StartTime ?? 0,
            Origin = Origin.Created,
            Fixture = fixture,
            LogFile = log,
            EverControlled = true,
        };
        _victims.Add(victim);
        _slots[slot] = victim;
        var model = Adopt(victim, handle, GrabMode.Control);
        Trace($"  created {victim.Name} as {model.Name}, {handle.State}");
        if (handle.State is not (VictimState.Idle or VictimState.Undead))
        {
            Violation($"S1: create returned {victim.Name} in state {handle.State}, not waiting at its rendezvous", victim, "s1");
        }

        if (b % 3 != 0)
        {
            Continue(slot);
        }
    }

    private async Task SpawnAsync(int slot, int a, int b)
    {
        if (_slots[slot] is not null)
        {
            return;
        }

        var fixture = Choose(a, b);
        var id = ++_nextVictim;
        var log = Path.Combine(_fixtures.Dir, $"v{id}.log");
        var status = Path.Combine(_fixtures.Dir, $"v{id}.status");
        var grabAtOnce = !fixture.LongRunning || b % 3 == 0;
        Trace($"spawn v{id} {fixture} untraced{(grabAtOnce ? ", grab at once" : string.Empty)}");
        if (await _fixtures.StartExternalAsync(status, fixture.Program, Arguments(fixture, log)) is not var (pid, nanny))
        {
            Trace("  the nanny did not report a pid in 5 s (not ProcHex's doing)");
            return;
        }

        var victim = new VictimModel
        {
            Id = id,
            Pid = pid,
            StartTime = ProcView.Stat(pid)?.StartTime ?? 0,
            Origin = Origin.External,
            Fixture = fixture,
            LogFile = log,
            StatusFile = status,
            Nanny = nanny,
        };
        _victims.Add(victim);
        _slots[slot] = victim;
        Trace($"  spawned {victim.Name}");
        if (grabAtOnce)
        {
            await GrabAsync(victim, GrabMode.Control, continueAfter: b % 2 == 0);
        }
    }

    private Task GrabAsync(int slot, int a)
    {
        if (_slots[slot] is not { } victim)
        {
            return Task.CompletedTask;
        }

        var mode = (a % 10) switch
        {
            < 5 => GrabMode.Control,
            < 8 => GrabMode.ReadOnly,
            _ => GrabMode.ControlWithoutMonitor,
        };
        return GrabAsync(victim, mode, continueAfter: a / 10 % 3 != 0);
    }

    private async Task GrabAsync(VictimModel victim, GrabMode mode, bool continueAfter)
    {
        if (victim.DeadSince is not null && continueAfter)
        {
            return;
        }

        Trace($"grab {victim.Name} {mode}");
        var held = victim.Handles.FirstOrDefault(h => h.References > 0 && !h.Handle.IsReadOnly && !h.Destroyed);
        ProcessHandle handle;
        try
        {
            handle = await Guard(_session.GrabAsync(victim.Pid, mode, _stop), "GrabAsync");
        }
        catch (GrabFailedException ex)
        {
            Trace($"  grab failed: {ex.Message}");
            await JudgeGrabFailureAsync(victim, ex.Message);
            return;
        }

        if (handle.Pid != victim.Pid)
        {
            Violation($"grab of pid {victim.Pid} returned a handle for pid {handle.Pid}");
        }

        if (mode != GrabMode.ReadOnly && handle.IsReadOnly)
        {
            Violation($"S6: grab of {victim.Name} for {mode} returned a read-only handle");
        }

        if (held is not null && !ReferenceEquals(held.Handle, handle))
        {
            Violation($"S5: grab of {victim.Name}, held as {held.Name}, returned another handle");
        }

        var model = Adopt(victim, handle, mode);
        if (!handle.IsReadOnly)
        {
            victim.EverControlled = true;
            victim.ReleasedControl = false;
        }

        Trace($"  {model.Name} ({handle.State}, refs {model.References})");
        if (continueAfter && model.Kind == GrabMode.Control)
        {
            Continue(model);
        }
    }

    /// <summary>A failed grab is fine when the victim is dead, dying or ours; not when it lives untraced and grabbable.</summary>
    private async Task JudgeGrabFailureAsync(VictimModel victim, string message)
    {
        if (message.Contains("already traced", StringComparison.Ordinal))
        {
            var tracer = ProcView.TracerPid(victim.Pid);
            var ours = tracer is { } t && ProcView.OwnThreads().Any(o => o.Tid == t);
            if (ours && !victim.HeldForControl)
            {
                Violation($"grab of {victim.Name} failed: \"{message}\": still traced by us though every controlling handle was released", victim, "traced");
            }

            return;
        }

        if (victim.Origin == Origin.Created || !message.Contains("no such process", StringComparison.Ordinal))
        {
            return;
        }

        // "No such process" for a victim that goes on living (not a zombie) is a grab that lost a live process.
        await Task.Delay(500, _stop);
        if (IsAlive(victim) && ProcView.Stat(victim.Pid) is { State: not ('Z' or 'X') } && NannyReport.Read(victim.StatusFile!) is not { Ended: true })
        {
            Violation($"S3: grab of {victim.Name} failed with \"{message}\", but it is alive and untraced 500 ms later", victim, "grab-lost");
        }
    }

    private HandleModel Adopt(VictimModel victim, ProcessHandle handle, GrabMode kind)
    {
        if (!_handles.TryGetValue(handle, out var model))
        {
            model = new HandleModel { Id = ++_nextHandle, Handle = handle, Victim = victim, Kind = kind, LastContinue = Now };
            _handles.Add(handle, model);
            victim.Handles.Add(model);
        }

        model.References++;
        return model;
    }

    private async Task ReleaseAsync(int slot, int b)
    {
        if (_slots[slot] is not { } victim)
        {
            return;
        }

        var held = victim.Handles.Where(h => h.References > 0).ToList();
        if (held.Count == 0)
        {
            Retire(slot, victim);
            return;
        }

        var model = held[b % held.Count];
        if (victim.DeadSince is not null && model.References > 1)
        {
            // A dead victim's handle only collects references from grabs that return it (S5): drop all but one.
            for (; model.References > 1; model.References--)
            {
                await Guard(_session.ReleaseAsync(model.Handle), "ReleaseAsync");
            }
        }

        model.References--;
        Trace($"release {model.Name} of {victim.Name} ({model.Handle.State}, refs left {model.References})");
        try
        {
            await Guard(_session.ReleaseAsync(model.Handle), "ReleaseAsync");
        }
        catch (InvalidHandleException ex)
        {
            Violation($"S8: release of {model.Name}, which the client holds, was refused: {ex.Message}");
            return;
        }

        if (model.References == 0 && model.Kind != GrabMode.ReadOnly)
        {
            model.Destroyed = true;
            if (model.Handle.State != VictimState.Released)
            {
                Violation($"S8: the last release of {model.Name} left it {model.Handle.State}, not Released");
            }
        }

        if (victim.EverControlled && !victim.HeldForControl)
        {
            victim.ReleasedControl = true;
            victim.MayHang |= victim.Origin == Origin.Created && victim.ExternallyStopped;
            victim.LastRunKey = null;
        }
    }

    /// <summary>A slot whose victim nobody holds any more is emptied: the victim is killed (if it lives) and checked at the end.</summary>
    private void Retire(int slot, VictimModel victim)
    {
        Trace($"retire {victim.Name}");
        if (IsAlive(victim))
        {
            victim.KilledByUs = true;
            _ = Native.Kill(victim.Pid, Native.SIGKILL);
        }

        victim.Retired = true;
        _slots[slot] = null;
    }

    private void Continue(int slot)
    {
        if (_slots[slot]?.Handles.FirstOrDefault(h => h.References > 0 && h.Kind == GrabMode.Control) is { } model)
        {
            Continue(model);
        }
    }

    private void Continue(HandleModel model)
    {
        Trace($"continue {model.Name} ({model.Handle.State})");
        model.LastContinue = Now;
        try
        {
            _session.Continue(model.Handle);
        }
        catch (ProcHexException ex)
        {
            Violation($"S11: continue of the held {model.Name} failed: {ex.Message}");
        }
    }

    private async Task LockAsync(int slot, int b)
    {
        if (_slots[slot]?.Handles.FirstOrDefault(h => h.References > 0) is not { } model)
        {
            return;
        }

        Trace($"lock {model.Name} ({model.Handle.State}) for {b % 40} ms");
        VictimLockScope scope;
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
        {
            try
            {
                scope = await _session.LockAsync(model.Handle, timeout.Token);
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested)
            {
                Violation($"S21: the lock of {model.Name} ({model.Handle.State}) was not granted within 5 s", model.Victim, "lock");
                return;
            }
        }

        try
        {
            try
            {
                var again = await Guard(_session.LockAsync(model.Handle), "a second LockAsync");
                again.Dispose();
                Violation($"S21: {model.Name} was locked twice by the same caller");
            }
            catch (LockMisuseException)
            {
            }

            await Task.Delay(b % 40, _stop);
        }
        finally
        {
            scope.Unlock();
        }

        try
        {
            scope.Unlock();
            Violation($"S21: unlocking {model.Name} twice was accepted");
        }
        catch (LockMisuseException)
        {
        }
    }

    private async Task SetBreakpointAsync(int slot, int a, int b)
    {
        if (_slots[slot] is not { } victim || victim.Handles.Where(h => h.References > 0).ToList() is not { Count: > 0 } held)
        {
            return;
        }

        var model = held.FirstOrDefault(h => h.Kind == GrabMode.Control && b % 4 != 0) ?? held[b % held.Count];
        var spec = BreakpointSpecs[a % BreakpointSpecs.Length];
        var hits = new StrongBox<long>();
        Trace($"breakpoint {spec} in {model.Name} ({model.Handle.State})");
        try
        {
            var handle = model.Handle;
            var breakpoint = await Guard(_session.SetBreakpointAsync(handle, spec, hit =>
            {
                Interlocked.Increment(ref hits.Value);
                if (!ReferenceEquals(hit.Handle, handle))
                {
                    Interlocked.Increment(ref _wrongHandleHits);
                }
            }), "SetBreakpointAsync");
            model.Breakpoints.Add((breakpoint, spec, hits));
            Trace(string.Create(CultureInfo.InvariantCulture, $"  planted at 0x{breakpoint.Address:x}"));
        }
        catch (InvalidHandleException ex)
        {
            Violation($"S23: breakpoint on the held {model.Name} refused as an unknown handle: {ex.Message}");
        }
        catch (ProcHexException ex)
        {
            // Dead, lost, read-only or monitor-less handles, a symbol not (yet) mapped: the call says why.
            Trace($"  refused: {ex.Message}");
        }
    }

    private async Task RemoveBreakpointAsync(int slot, int b)
    {
        var candidates = _slots[slot]?.Handles.Where(h => h.References > 0).SelectMany(h => h.Breakpoints.Select(p => (Model: h, Planted: p))).ToList();
        if (candidates is not { Count: > 0 })
        {
            return;
        }

        var (model, planted) = candidates[b % candidates.Count];
        model.Breakpoints.Remove(planted);
        Trace($"remove breakpoint {planted.Spec} of {model.Name} after {planted.Hits.Value} hits ({model.Handle.State})");
        try
        {
            await Guard(_session.RemoveBreakpointAsync(planted.Breakpoint), "RemoveBreakpointAsync");
        }
        catch (ProcHexException ex)
        {
            Violation($"removing a breakpoint of the held {model.Name} failed: {ex.Message}");
        }
    }

    private void Signal(int slot, int signal, string name)
    {
        if (_slots[slot] is not { } victim || !IsAlive(victim))
        {
            return;
        }

        Trace($"{name} {victim.Name} from outside");
        if (Native.Kill(victim.Pid, signal) != 0)
        {
            return;
        }

        switch (signal)
        {
            case Native.SIGKILL:
                victim.KilledByUs = true;
                break;
            case Native.SIGSTOP:
                victim.ExternallyStopped = true;
                victim.LastRunKey = null;
                break;
            case Native.SIGCONT:
                victim.ExternallyStopped = false;
                victim.LastRunKey = null;
                break;
        }
    }

    private async Task WaitForNotificationAsync(int a)
    {
        Trace($"wait for a notification up to {a % 50} ms");
        if (await Guard(_session.WaitForNotificationAsync(TimeSpan.FromMilliseconds(a % 50), _stop), "WaitForNotificationAsync") is { } notification)
        {
            Record(notification);
        }
    }

    /// <summary>The process we started is still the one at its pid, and not a zombie.</summary>
    private static bool IsAlive(VictimModel victim) =>
        ProcView.Stat(victim.Pid) is { } stat && stat.StartTime == victim.StartTime && stat.State is not ('Z' or 'X');

    private async Task<T> Guard<T>(Task<T> call, string what)
    {
        try
        {
            return await call.WaitAsync(ChaosOptions.HangLimit, _stop);
        }
        catch (TimeoutException)
        {
            throw new HangException($"{what} did not return within {ChaosOptions.HangLimit.TotalSeconds} s");
        }
    }

    private async Task Guard(Task call, string what)
    {
        try
        {
            await call.WaitAsync(ChaosOptions.HangLimit, _stop);
        }
        catch (TimeoutException)
        {
            throw new HangException($"{what} did not return within {ChaosOptions.HangLimit.TotalSeconds} s");
        }
    }

    private void Trace(string line)
    {
        var text = string.Create(CultureInfo.InvariantCulture, $"#{_operation} {line}");
        if (_options.Trace)
        {
            Console.WriteLine(text);
        }

        _recent.Enqueue(text);
        if (_recent.Count > 40)
        {
            _recent.Dequeue();
        }
    }

    private void Violation(string text, VictimModel? victim = null, string? key = null)
    {
        if (victim is not null && key is not null && !victim.Reported.Add(key))
        {
            return;
        }

        var line = string.Create(CultureInfo.InvariantCulture, $"violation (seed {_options.Seed}, operation {_operation}): {text}");
        Violations.Add(line);
        Console.WriteLine(line);
        if (!_options.Trace && Violations.Count <= 3)
        {
            Console.WriteLine($"  the last {_recent.Count} trace lines (the whole run: --seed {_options.Seed} --operations {_operation} --trace):");
            foreach (var recent in _recent)
            {
                Console.WriteLine("  | " + recent);
            }
        }
    }
}
