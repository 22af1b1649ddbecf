using System.Globalization;
using ProcHex.Backends.Fake;
using ProcHex.Ports;

namespace ProcHex.Simulation;

/// <summary>The client workload: one operation per call, drawn from the seed, with the outcomes the API promises.</summary>
public sealed partial class SimulationRun
{
    private async Task OperationAsync(int actor)
    {
        var who = string.Create(CultureInfo.InvariantCulture, $"a{actor}");
        switch (Random.Next(100))
        {
            case < 10:
                await CreateAsync(who);
                break;
            case < 22:
                await GrabAsync(who);
                break;
            case < 33:
                await ReleaseAsync(who);
                break;
            case < 43:
                Continue(who);
                break;
            case < 50:
                await LockAsync(who);
                break;
            case < 59:
                await SetBreakpointAsync(who);
                break;
            case < 65:
                await RemoveBreakpointAsync(who);
                break;
            case < 73:
                await WaitForNotificationAsync(who);
                break;
            case < 77:
                Read(who);
                break;
            case < 86:
                SignalFromOutside(who);
                break;
            case < 88:
                SpawnExternal(who);
                break;
            case < 92 when Options.Counters:
                await SetCounterAsync(who);
                break;
            case < 94 when Options.Counters:
                await RemoveCounterAsync(who);
                break;
            default:
                var ms = Random.Next(1, 40);
                Trace.Add(string.Create(CultureInfo.InvariantCulture, $"{who} sleep {ms}ms"));
                await Task.Delay(TimeSpan.FromMilliseconds(ms), Time);
                break;
        }
    }

    private async Task CreateAsync(string who)
    {
        var (image, arguments) = PickProgram(external: false);
        Rendezvous? stopAt = Random.Next(5) is var r && r < 4 ? (Rendezvous)r : null;
        var timeout = TimeSpan.FromMilliseconds(Random.Next(30, 400));
        Trace.Add($"{who} create {image.Name} {string.Join(' ', arguments)} at {stopAt?.ToString() ?? "default"} within {timeout.TotalMilliseconds}ms");
        using var timer = new CancellationTokenSource(timeout, Time);
        _inflightAcquires.Add(null);
        try
        {
            var handle = await Session.CreateAsync(image.Path, [image.Path, .. arguments], new CreateOptions { StopAt = stopAt }, timer.Token);
            _inflightAcquires.Remove(null);
            var model = ModelOf(handle);
            model.References++;
            _createdPids.Add(handle.Pid);
            Trace.Add(string.Create(CultureInfo.InvariantCulture, $"{who} created {model.Name} pid {handle.Pid} ({handle.State}, refs {model.References})"));
        }
        catch (Exception ex) when (ex is CreateFailedException || (ex is OperationCanceledException && timer.IsCancellationRequested))
        {
            _inflightAcquires.Remove(null);
            NoteLostDuringSetUp(ex);
            Trace.Add($"{who} create failed: {ex.GetType().Name}: {ex.Message}");
        }
        catch (Exception ex) when (ex is not InvariantViolationException)
        {
            throw Unexpected(who, "create", ex);
        }
    }

    private async Task GrabAsync(string who)
    {
        var pids = Kernel.Pids.Where(p => !IsBorrowingVforkChild(p)).ToList();
        var pid = Random.Next(20) switch
        {
            < 14 when pids.Count > 0 => pids[Random.Next(pids.Count)],
            < 17 when _modelList.Count > 0 => _modelList[Random.Next(_modelList.Count)].Handle.Pid,
            17 => Kernel.SelfPid,
            18 => Random.Next(2) == 0 ? 0 : -1,
            _ => 9000 + Random.Next(100),
        };
        var mode = Random.Next(20) switch
        {
            < 8 => GrabMode.Control,
            < 17 => GrabMode.ReadOnly,
            _ => GrabMode.ControlWithoutMonitor,
        };
        var timeout = TimeSpan.FromMilliseconds(Random.Next(30, 400));
        Trace.Add(string.Create(CultureInfo.InvariantCulture, $"{who} grab pid {pid} {mode} within {timeout.TotalMilliseconds}ms"));
        using var timer = new CancellationTokenSource(timeout, Time);
        _inflightAcquires.Add(pid);
        try
        {
            var handle = await Session.GrabAsync(pid, mode, timer.Token);
            _inflightAcquires.Remove(pid);
            var model = ModelOf(handle);
            model.References++;
            Trace.Add(string.Create(CultureInfo.InvariantCulture, $"{who} grabbed {model.Name} pid {handle.Pid} ({handle.State}{(handle.IsReadOnly ? ", read-only" : string.Empty)}, refs {model.References})"));
            if (handle.Pid != pid)
            {
                throw new InvariantViolationException($"grab of pid {pid} returned {model.Name} for pid {handle.Pid}");
            }

            if (mode != GrabMode.ReadOnly && handle.IsReadOnly)
            {
                throw new InvariantViolationException($"grab of pid {pid} for {mode} returned the read-only {model.Name} (S6 asks for an upgrade)");
            }
        }
        catch (Exception ex) when (ex is GrabFailedException || (ex is OperationCanceledException && timer.IsCancellationRequested))
        {
            _inflightAcquires.Remove(pid);
            NoteLostDuringSetUp(ex);
            Trace.Add($"{who} grab failed: {ex.GetType().Name}: {ex.Message}");
        }
        catch (Exception ex) when (ex is not InvariantViolationException)
        {
            throw Unexpected(who, "grab", ex);
        }
    }

    private async Task ReleaseAsync(string who)
    {
        if (Random.Next(10) == 0 && PickModel(m => m.References == 0) is { } unheld)
        {
            // S23: releasing a handle the client no longer holds is an error, whether or not it is still cached.
            Trace.Add($"{who} release {unheld.Name} it does not hold ({unheld.Handle.State})");
            try
            {
                await Session.ReleaseAsync(unheld.Handle);
            }
            catch (InvalidHandleException ex)
            {
                Trace.Add($"{who} release refused: {ex.Message}");
                return;
            }
            catch (Exception ex) when (ex is not InvariantViolationException)
            {
                throw Unexpected(who, "release", ex);
            }

            throw new InvariantViolationException($"{who}: release of {unheld.Name} (pid {unheld.Handle.Pid}), which the client no longer holds, was accepted");
        }

        if (PickModel(m => m.References > 0) is not { } model)
        {
            return;
        }

        model.References--;
        Trace.Add(string.Create(CultureInfo.InvariantCulture, $"{who} release {model.Name} pid {model.Handle.Pid} ({model.Handle.State}, refs left {model.References})"));
        try
        {
            await Session.ReleaseAsync(model.Handle);
        }
        catch (Exception ex) when (ex is not InvariantViolationException)
        {
            throw Unexpected(who, "release", ex);
        }

        Trace.Add($"{who} released {model.Name} ({model.Handle.State})");
    }

    private void Continue(string who)
    {
        if (Random.Next(10) == 0 && PickModel(m => m.Handle.State == VictimState.Released) is { } released)
        {
            Trace.Add($"{who} continue released {released.Name}");
            ExpectInvalidHandle(who, "continue", () => Session.Continue(released.Handle));
            return;
        }

        if (PickModel(m => m.References > 0) is not { } model)
        {
            return;
        }

        Trace.Add($"{who} continue {model.Name} ({model.Handle.State})");
        try
        {
            Session.Continue(model.Handle);
        }
        catch (Exception ex)
        {
            throw Unexpected(who, "continue", ex);
        }
    }

    private async Task LockAsync(string who)
    {
        if (PickModel(m => m.References > 0) is not { } model)
        {
            return;
        }

        var handle = model.Handle;
        Trace.Add($"{who} lock {model.Name} ({handle.State})");
        VictimLockScope scope;
        try
        {
            scope = await Session.LockAsync(handle);
        }
        catch (InvalidHandleException ex) when (handle.State == VictimState.Released)
        {
            Trace.Add($"{who} lock refused: {ex.Message}");
            return;
        }
        catch (Exception ex) when (ex is not InvariantViolationException)
        {
            throw Unexpected(who, "lock", ex);
        }

        Trace.Add($"{who} locked {model.Name} ({handle.State})");
        try
        {
            switch (Random.Next(5))
            {
                case 0:
                    await ExpectLockMisuseAsync(who, "lock twice", async () => (await Session.LockAsync(handle)).Dispose(), handle);
                    break;
                case 1:
                    await SetBreakpointOnAsync(who, model);
                    break;
                case 2 when handle.State != VictimState.Released:
                    Trace.Add($"{who} continue {model.Name} under lock ({handle.State})");
                    Session.Continue(handle);
                    break;
                case 3:
                    ReadFrom(who, model);
                    break;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(Random.Next(0, 15)), Time);
        }
        finally
        {
            switch (Random.Next(3))
            {
                case 0:
                    scope.Dispose();
                    break;
                case 1 when handle.State != VictimState.Released:
                    Session.Unlock(handle);
                    break;
                default:
                    scope.Unlock();
                    break;
            }

            Trace.Add($"{who} unlocked {model.Name} ({handle.State})");
        }

        if (Random.Next(4) == 0)
        {
            await ExpectLockMisuseAsync(who, "unlock again", () => { scope.Unlock(); return Task.CompletedTask; }, handle);
        }
    }

    private async Task SetBreakpointAsync(string who)
    {
        if (Random.Next(10) == 0 && PickModel(m => m.Handle.State == VictimState.Released) is { } released)
        {
            Trace.Add($"{who} breakpoint on released {released.Name}");
            await ExpectInvalidHandleAsync(who, "set breakpoint", () => Session.SetBreakpointAsync(released.Handle, "a.out`work", _ => { }));
            return;
        }

        if (PickModel(m => m.References > 0) is { } model)
        {
            await SetBreakpointOnAsync(who, model);
        }
    }

    private async Task SetBreakpointOnAsync(string who, HandleModel model)
    {
        var handle = model.Handle;
        var raw = Random.Next(6) == 0;
        var spec = s_breakpointSpecs[Random.Next(s_breakpointSpecs.Length)];
        var where = raw ? "0xdead0000" : spec;
        Trace.Add($"{who} breakpoint {model.Name} {where} ({handle.State})");
        try
        {
            var hits = 0;
            void Handler(BreakpointHit hit)
            {
                hits++;
                Trace.Add(string.Create(CultureInfo.InvariantCulture, $"hit {model.Name} {where} tid {hit.ThreadId} (#{hits}, site #{hit.HitCount})"));
                if (hits % 5 == 0)
                {
                    throw new InvalidOperationException("client handler failed (simulated)");
                }
            }

            var breakpoint = raw
                ? await Session.SetBreakpointAsync(handle, 0xdead0000, Handler)
                : await Session.SetBreakpointAsync(handle, spec, Handler);
            _breakpoints.Add(breakpoint);
            Trace.Add($"{who} breakpoint set on {model.Name} {where} (planted {breakpoint.IsPlanted})");
        }
        catch (SymbolNotFoundException ex)
        {
            Trace.Add($"{who} breakpoint failed: {ex.Message}");
        }
        catch (ProcHexException ex) when (ex.GetType() == typeof(ProcHexException))
        {
            // Read-only or monitor-less handles and dead victims refuse breakpoints with a plain ProcHexException.
            Trace.Add($"{who} breakpoint refused: {ex.Message}");
        }
        catch (InvalidHandleException ex) when (handle.State is VictimState.Releasing or VictimState.Released || !handle.Victim.Registered)
        {
            // A release under way refuses new breakpoints: a trap planted after the loop's clean-up would stay.
            Trace.Add($"{who} breakpoint refused: {ex.Message}");
        }
        catch (Exception ex) when (ex is not InvariantViolationException)
        {
            throw Unexpected(who, "set breakpoint", ex);
        }
    }

    private async Task RemoveBreakpointAsync(string who)
    {
        if (_breakpoints.Count == 0)
        {
            return;
        }

        var index = Random.Next(_breakpoints.Count);
        var breakpoint = _breakpoints[index];
        _breakpoints.RemoveAt(index);
        var model = ModelOf(breakpoint.Handle);
        Trace.Add(string.Create(CultureInfo.InvariantCulture, $"{who} remove breakpoint 0x{breakpoint.Address:x} of {model.Name} ({breakpoint.Handle.State})"));
        if (breakpoint.Handle.State == VictimState.Released)
        {
            await ExpectInvalidHandleAsync(who, "remove breakpoint", () => Session.RemoveBreakpointAsync(breakpoint));
            return;
        }

        try
        {
            await Session.RemoveBreakpointAsync(breakpoint);
        }
        catch (Exception ex) when (ex is not InvariantViolationException)
        {
            throw Unexpected(who, "remove breakpoint", ex);
        }
    }

    private async Task WaitForNotificationAsync(string who)
    {
        var started = ++_clock;
        if (Random.Next(4) == 0)
        {
            if (Session.TryTakeNotification(out var taken))
            {
                OnNotification(who, taken, started);
            }

            return;
        }

        var timeout = TimeSpan.FromMilliseconds(Random.Next(0, 60));
        Trace.Add(string.Create(CultureInfo.InvariantCulture, $"{who} wait for a notification within {timeout.TotalMilliseconds}ms"));
        VictimNotification? notification;
        try
        {
            notification = await Session.WaitForNotificationAsync(timeout);
        }
        catch (Exception ex) when (ex is not InvariantViolationException)
        {
            throw Unexpected(who, "wait for notification", ex);
        }

        if (notification is null)
        {
            Trace.Add($"{who} no notification");
            return;
        }

        OnNotification(who, notification, started);
    }

    private void Read(string who)
    {
        if (PickModel(m => m.References > 0) is { } model)
        {
            ReadFrom(who, model);
        }
    }

    private void ReadFrom(string who, HandleModel model)
    {
        var handle = model.Handle;
        try
        {
            var address = handle.LookupSymbol("a.out`calls");
            Span<byte> bytes = stackalloc byte[8];
            var read = handle.ReadMemory(address, bytes);
            Trace.Add(string.Create(CultureInfo.InvariantCulture, $"{who} read {model.Name} calls: {read} bytes, {(read == 8 ? BitConverter.ToInt64(bytes) : -1)}"));
        }
        // A backend failure must reach the client typed (a ProcHexException wrapping it), never raw.
        catch (Exception ex) when (ex is SymbolNotFoundException or ProcHexException { InnerException: TracerException }
            || (ex is InvalidHandleException && handle.State == VictimState.Released))
        {
            Trace.Add($"{who} read {model.Name} failed: {ex.Message}");
        }
        catch (Exception ex)
        {
            throw Unexpected(who, "read", ex);
        }
    }

    private void SignalFromOutside(string who)
    {
        var pids = Kernel.Pids;
        if (pids.Count == 0)
        {
            return;
        }

        var pid = pids[Random.Next(pids.Count)];
        var signal = Random.Next(20) switch
        {
            < 9 => Signals.Stop,
            < 18 => Signals.Cont,
            _ => Signals.Kill,
        };
        Trace.Add(string.Create(CultureInfo.InvariantCulture, $"{who} outside signal {signal} to pid {pid}"));
        Kernel.SendSignal(pid, signal);
    }

    /// <summary>
    /// A vfork child before its exec runs in its parent's memory. The ports cannot tell the core so, and traps it
    /// plants there stay in the parent after the exec: a known limit, kept out of the workload (see the README).
    /// </summary>
    private bool IsBorrowingVforkChild(int pid) =>
        Kernel.ImageOf(pid) == Programs.Vfork && Kernel.Pids.Any(parent => parent != pid && Kernel.ChildrenOf(parent).Contains(pid));

    private HandleModel? PickModel(Func<HandleModel, bool> filter)
    {
        var candidates = _modelList.Where(filter).ToList();
        return candidates.Count == 0 ? null : candidates[Random.Next(candidates.Count)];
    }

    private void ExpectInvalidHandle(string who, string operation, Action action)
    {
        try
        {
            action();
        }
        catch (InvalidHandleException ex)
        {
            Trace.Add($"{who} {operation} refused: {ex.Message}");
            return;
        }
        catch (Exception ex)
        {
            throw Unexpected(who, operation, ex);
        }

        throw new InvariantViolationException($"{who}: {operation} on a released handle was accepted (S23)");
    }

    private async Task ExpectInvalidHandleAsync(string who, string operation, Func<Task> action)
    {
        try
        {
            await action();
        }
        catch (InvalidHandleException ex)
        {
            Trace.Add($"{who} {operation} refused: {ex.Message}");
            return;
        }
        catch (Exception ex) when (ex is not InvariantViolationException)
        {
            throw Unexpected(who, operation, ex);
        }

        throw new InvariantViolationException($"{who}: {operation} on a released handle was accepted (S23)");
    }

    private async Task ExpectLockMisuseAsync(string who, string operation, Func<Task> action, ProcessHandle handle)
    {
        try
        {
            await action();
        }
        catch (LockMisuseException ex)
        {
            Trace.Add($"{who} {operation} refused: {ex.Message}");
            return;
        }
        catch (InvalidHandleException ex) when (handle.State == VictimState.Released)
        {
            Trace.Add($"{who} {operation} refused: {ex.Message}");
            return;
        }
        catch (Exception ex) when (ex is not InvariantViolationException)
        {
            throw Unexpected(who, operation, ex);
        }

        throw new InvariantViolationException($"{who}: {operation} was accepted (S21 asks for a LockMisuseException)");
    }

    private static InvariantViolationException Unexpected(string who, string operation, Exception ex) =>
        new($"{who} {operation}: unexpected {ex.GetType().Name}: {ex.Message}", ex);
}
