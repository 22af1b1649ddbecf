using System.Globalization;
using Microsoft.Extensions.Logging;
using ProcHex.Backends.Linux.Simulation.Kernel;
using ProcHex.Ports;
using Sys = ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux.Simulation.Runner;

/// <summary>
/// One seed: a churning fake victim, grabbed by the real <see cref="Grabber"/> over a manual
/// <see cref="OwnerThread"/> on the fake kernel, breakpoints planted through <see cref="LinuxProcess"/>, then world
/// steps, someone else's SIGSTOP/SIGCONT at any instant, our own stop requests, and a core that answers every stop
/// as the control loop does; finally a release (Run, Hang or Kill). Everything runs on the calling thread, in an order
/// the seed alone decides. Invariants are checked after every pump of the owner; a violation throws.
/// </summary>
internal sealed class LinuxSimulationRun
{
    /// <summary>Above PID_MAX_LIMIT (2^22): no fake pid is ever the pid of the process running the simulation.</summary>
    private const int FirstPid = 5_000_000;

    private const int MaxPumpRounds = 10_000;

    private readonly Random _random;
    private readonly Random _changes;
    private readonly LinuxSimulationOptions _options;
    private readonly Dictionary<ulong, BreakpointPatch> _patches = [];
    private readonly HashSet<string> _covered = [];
    private readonly VictimImages _images;
    private OwnerThread _owner = null!;
    private ILogger? _logger;
    private LinuxProcess? _process;
    private string? _violation;
    private bool _gone;
    private string? _accessFailedAsGone;
    private bool _held;
    private bool _forkStarting;
    private bool _quit;
    private int _lastOutsiderSignal = Sys.SIGCONT;
    private int _stopsLostBeforeLastSignal;

    public LinuxSimulationRun(int seed, LinuxSimulationOptions options)
    {
        Seed = seed;
        _options = options;
        _random = new Random(seed ^ 0x5eed);
        _changes = new Random(seed ^ 0xc4a05);
        Kernel = new FakeLinuxKernel(seed, FirstPid) { MaxStepsPerWait = 20_000 };
        _images = new VictimImages(_random);
    }

    public int Seed { get; }

    public FakeLinuxKernel Kernel { get; }

    public int Pid { get; private set; }

    /// <summary>The transitions of the S20 machine this seed went through (<see cref="S20Coverage"/>).</summary>
    public IReadOnlySet<string> Covered => _covered;

    public ReleaseMode Mode { get; private set; }

    public void Execute()
    {
        Kernel.InterleaveChance = _random.Next(3) switch { 0 => 0, 1 => 0.05, _ => 0.25 };
        Kernel.RequestObserver = OnRequest;
        Kernel.UserStepObserver = OnUserStep;
        Pid = Kernel.Spawn(_images.Image);
        Note($"victim {Pid}: {_images}; interleave {Kernel.InterleaveChance}");
        Kernel.Run(_random.Next(0, 40));
        if (_random.Next(4) == 0)
        {
            // Grabbed while someone else stops (or has stopped) it.
            Outsider(Sys.SIGSTOP);
            Kernel.Run(_random.Next(0, 20));
        }

        _logger = _options.AdapterLog ? new TraceLogger(Kernel.Log) : null;
        _owner = OwnerThread.Manual(Kernel, _logger);
        Grab();
        Rounds();
        if (_options.ChangesWhileRunning && !_gone && !_quit && _changes.Next(3) == 0)
        {
            // Released to run and grabbed again (chaos seed 3 did it within a millisecond): whatever the first
            // control left behind (a stop of someone else's, a pending signal, a vfork child) meets a fresh adapter.
            Regrab();
            Rounds();
        }

        Finish();
    }

    private void Grab()
    {
        var emulation = _random.Next(2) == 0;
        var grab = Grabber.Grab(_owner, Pid, GrabAccess.Control, _logger ?? (ILogger)Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, p =>
        {
            p.EmulationEnabled = emulation;
            p.StopMachine.Observer = OnMachine;
        });
        for (var i = 0; i < MaxPumpRounds && !grab.IsCompleted; i++)
        {
            _owner.PumpUntilIdle();
            Check();
            if (!grab.IsCompleted && !Kernel.Step())
            {
                break;
            }
        }

        if (!grab.IsCompleted)
        {
            Fail("the grab never completed");
        }

        _process = grab.GetAwaiter().GetResult();
        Note($"core: grabbed {Pid} ({(emulation ? "emulated" : "out-of-line")} step-over)");
        _process.BeginControl();
        PlantAll();
        Note("core: resume after the grab");
        _process.Resume();
        Settle();
    }

    private void Rounds()
    {
        var rounds = _random.Next(_options.MinRounds, _options.MaxRounds + 1);
        for (var round = 0; round < rounds && !_gone && !_quit; round++)
        {
            Act();
            Settle();
        }
    }

    /// <summary>A release to run (S9), the world moves a little, and a new grab of the same victim (a new adapter, the same owner).</summary>
    private void Regrab()
    {
        Note("core: release Run, to grab it again");
        var process = _process!;
        _process = null;
        process.Release(ReleaseMode.Run);
        process.Dispose();
        _patches.Clear();
        _held = false;
        _forkStarting = false;
        Check();
        Kernel.Run(_changes.Next(0, 20));
        try
        {
            Grab();
        }
        catch (GrabException e) when (e.Kind == TracerErrorKind.Gone)
        {
            // It ended meanwhile (a zombie until its parent reaps it): nothing is left to grab or to release.
            Note($"core: the grab found it gone: {e.Message}");
            _gone = true;
        }
    }

    /// <summary>One round: the world moves, and sometimes someone else signals or the core asks for a stop.</summary>
    private void Act()
    {
        var roll = _random.Next(100);
        if (roll < 12)
        {
            Outsider(_random.Next(3) == 0 ? Sys.SIGCONT : (_random.Next(4) == 0 ? Sys.SIGTSTP : Sys.SIGSTOP));
        }
        else if (roll < 22)
        {
            Outsider(Sys.SIGCONT);
        }
        else if (roll < 27)
        {
            // The core's stop request: held for others, only a quit asks for it (Victim.RequestQuitAsync begins the release first,
            // so the loop resumes nothing after it); otherwise a stop it answers with a resume.
            _quit = _held;
            Note(_quit ? "core: quit (request stop)" : "core: request stop");
            _process!.RequestStop();
        }

        Kernel.Run(_random.Next(1, 25));
        if (_options.ChangesWhileRunning && _changes.Next(10) == 0 && !_quit && !_gone)
        {
            // The core changes a breakpoint while the victim runs (BreakpointSet needs no stop for it), perhaps just
            // after a fork copied the text and before its event is read (chaos seed 3: a fork child killed by a trap).
            ChangeOneBreakpoint();
        }
    }

    private void ChangeOneBreakpoint()
    {
        if (_patches.Count > 0 && _changes.Next(2) == 0)
        {
            var patch = _patches.Values.ElementAt(_changes.Next(_patches.Count));
            Note($"core: remove the breakpoint at 0x{patch.Address:x} while it runs");
            _patches.Remove(patch.Address);
            try
            {
                _process!.RemoveBreakpoint(patch);
            }
            catch (TracerException e) when (e.IsGone)
            {
                AccessFailedAsGone(e);
            }
        }
        else
        {
            Note("core: plant the missing breakpoints while it runs");
            PlantAll();
        }
    }

    /// <summary>The end: someone else's last word is SIGCONT (or, by seed, a stop), then the release and its checks.</summary>
    private void Finish()
    {
        var stoppedAtRelease = !_gone && !_quit && _random.Next(4) == 0;
        if (_quit)
        {
            // The control loop quits: someone else has their last word, the loop reads only who holds the victim.
            for (var i = 0; i < MaxPumpRounds && Kernel.Outsider.HasWork; i++)
            {
                Kernel.Run(1);
                _owner.PumpUntilIdle();
                Check();
            }

            while (!_gone && _process!.TakeReadyStop() is { } stop)
            {
                if (stop.Kind != Ports.StopKind.Stopped || stop.Reason is StopReason.StoppedByOthers or StopReason.ResumedByOthers)
                {
                    Answer(stop);
                }
            }
        }
        else if (!_gone)
        {
            Outsider(Sys.SIGCONT);
            DrainOutsider();
            for (var i = 0; i < 30 && !_gone; i++)
            {
                Kernel.Run(_random.Next(1, 10));
                Settle();
            }

            if (!_gone)
            {
                CheckContinued();
            }
        }

        if (stoppedAtRelease && !_gone)
        {
            Outsider(Sys.SIGSTOP);
            DrainOutsider();
            for (var i = 0; i < 200 && !_gone && !_held; i++)
            {
                Kernel.Run(3);
                Settle();
            }
        }

        if (_accessFailedAsGone is { } message && !_gone)
        {
            Fail($"a breakpoint access failed as gone ({message}), yet the victim neither exited nor was lost");
        }

        Mode = _random.Next(5) switch { 0 => ReleaseMode.Hang, 1 => ReleaseMode.Kill, _ => ReleaseMode.Run };
        if (_options.ChangesWhileRunning && !_gone && !_quit && _changes.Next(4) == 0)
        {
            // Someone else's last word races the release: the core decides from the reports it has taken (Hang while
            // it holds the victim for them, chaos seed 3), and the signal may land before, during or after it.
            var signal = _changes.Next(2) == 0 ? Sys.SIGCONT : Sys.SIGSTOP;
            Note($"core: release while someone else sends {(signal == Sys.SIGCONT ? "SIGCONT" : "SIGSTOP")}");
            Outsider(signal);
            Kernel.Run(_changes.Next(0, 4));
            Mode = _held ? ReleaseMode.Hang : ReleaseMode.Run;
        }

        var heldByOthers = _lastOutsiderSignal != Sys.SIGCONT && !StopLostToTheKernel();
        var lastWord = heldByOthers ? " (someone else's stop is the last word)"
            : _lastOutsiderSignal != Sys.SIGCONT ? " (someone else's last stop died with the thread that took it)" : string.Empty;
        Note($"core: release {Mode}{lastWord}, core {(_held ? "holds it for them" : "runs it")}");
        if (_process is { } process)
        {
            process.Release(Mode);
            Check();
            process.Dispose();
        }

        Kernel.Run(200);
        Check();

        // Asked again: a stop signal that raced the release may have died since with a thread an exec killed.
        CheckReleased(_lastOutsiderSignal != Sys.SIGCONT && !StopLostToTheKernel());
    }

    private void DrainOutsider()
    {
        for (var i = 0; i < MaxPumpRounds && Kernel.Outsider.HasWork; i++)
        {
            Kernel.Run(1);
            Settle();
        }
    }

    private void Outsider(int signal)
    {
        _lastOutsiderSignal = signal;
        _stopsLostBeforeLastSignal = Kernel.GroupOf(Pid)?.StopSignalsLost ?? 0;
        Kernel.ScheduleKill(Pid, signal);
    }

    /// <summary>
    /// Someone else's last stop signal never became a stop, and not through us: the thread that dequeued it died in
    /// an exec by another thread (de_thread) before acting on it, and no stop is under way or in effect. The real
    /// kernel drops it just so (do_signal_stop returns false once group_exec_task is set); nothing was left for our
    /// release to end (linux simulation seeds 16241, 16942, 21074, 37009, 70265).
    /// </summary>
    private bool StopLostToTheKernel() =>
        Kernel.GroupOf(Pid) is { } group && group.StopSignalsLost > _stopsLostBeforeLastSignal
        && !group.StopStopped && group.GroupStopCount == 0;

    /// <summary>Pumps the owner and lets the core answer until neither has anything left to do.</summary>
    private void Settle()
    {
        for (var i = 0; i < MaxPumpRounds; i++)
        {
            var busy = _owner.PumpUntilIdle();
            Check();
            if (_process is null || _gone || _quit)
            {
                return;
            }

            var answered = false;
            while (!_quit && _process.TakeReadyStop() is { } stop)
            {
                answered = true;
                Answer(stop);
                Check();
                if (_gone)
                {
                    return;
                }
            }

            if (!busy && !answered)
            {
                return;
            }
        }

        Fail("the owner and the core never settled");
    }

    /// <summary>The core's answer, as src/Core/Victims/ControlLoop.cs gives it.</summary>
    private void Answer(StopEvent stop)
    {
        Note($"core: takes {stop.Kind} {stop.Reason} tid {stop.ThreadId} pc 0x{stop.ProgramCounter:x}");
        var process = _process!;
        if (stop.Kind != Ports.StopKind.Stopped)
        {
            _gone = true;
            return;
        }

        switch (stop.Reason)
        {
            case StopReason.StoppedByOthers:
                _held = true;
                process.AwaitExternalResume();
                return;
            case StopReason.ResumedByOthers:
                _held = false;
                if (_quit)
                {
                    return; // the loop quits: its Resume does nothing
                }

                break;

            case StopReason.Breakpoint when _patches.TryGetValue(stop.ProgramCounter, out var patch):
                process.StepOverBreakpoint(stop.ThreadId, patch);
                break;
            case StopReason.ForkStarting:
                _forkStarting = true;
                RemoveAll();
                break;
            case StopReason.ForkDone:
                PlantAll();
                break;
            case StopReason.VforkDone:
                _forkStarting = false;
                PlantAll();
                break;
            case StopReason.ExecDone:
                _patches.Clear();
                PlantAll();
                break;
        }

        if (_held)
        {
            // As ControlLoop: a stop answered while held for others is not resumed; their resume's report does it.
            Note("core: answered while held for others: no resume");
            return;
        }

        try
        {
            process.Resume();
        }
        catch (TracerException e)
        {
            // The core logs a failed resume and goes on (ControlLoop.Try); the victim must not stay stopped for it.
            Note($"core: resume failed: {e.Message}");
        }
    }

    private void PlantAll()
    {
        foreach (var site in _images.Sites)
        {
            if (!_patches.ContainsKey(site) && !_forkStarting)
            {
                try
                {
                    _patches[site] = _process!.PlantBreakpoint(site);
                }
                catch (TracerException e) when (e.IsGone)
                {
                    AccessFailedAsGone(e);
                    return;
                }
            }
        }
    }

    private void RemoveAll()
    {
        foreach (var patch in _patches.Values)
        {
            try
            {
                _process!.RemoveBreakpoint(patch);
            }
            catch (TracerException e) when (e.IsGone)
            {
                AccessFailedAsGone(e);
                break;
            }
        }

        _patches.Clear();
    }

    /// <summary>
    /// The core tolerates a failed plant or removal (BreakpointSet.TryPlant, TryRemove); one that failed because the
    /// victim's image is gone must be followed by its end, an exit or a loss, which <see cref="Finish"/> checks.
    /// </summary>
    private void AccessFailedAsGone(TracerException e)
    {
        Note($"core: breakpoint access failed: {e.Message}");
        _accessFailedAsGone ??= e.Message;
    }

    // ---- invariants ---------------------------------------------------------------------------------------

    /// <summary>
    /// S20, at the request: a thread we continue from its part of someone else's group-stop while that stop lasts
    /// runs user code (it owes no re-trap) in the middle of a stop that is not ours to end.
    /// </summary>
    private void OnRequest(int request, int tid, nint data)
    {
        if (request is not (Sys.PTRACE_CONT or Sys.PTRACE_SYSCALL or Sys.PTRACE_SINGLESTEP) || Kernel.TaskOf(tid) is not { } t)
        {
            return;
        }

        var group = t.Group;
        var stopLasts = group.StopStopped || group.GroupStopCount > 0;
        var owesTrap = t.Has(JobControl.StopPending | JobControl.TrapMask) || !t.Pending.IsEmpty || !group.SharedPending.IsEmpty;
        if (t.State == TaskState.Traced && t.Stop is { Kind: Simulation.Kernel.StopKind.GroupStop } && stopLasts && !owesTrap && group.Pid == Pid)
        {
            Record($"S20: we resumed thread {tid} out of someone else's group-stop while it lasts (request {request})");
        }
    }

    /// <summary>S20, by its effect: no thread of the victim runs user code while its group-stop is in effect.</summary>
    private void OnUserStep(FakeTask t)
    {
        if (t.Group.StopStopped && t.Group.Pid == Pid)
        {
            Record($"S20: thread {t.Tid} runs while someone else's stop of {Pid} is in effect");
        }
    }

    private void OnMachine(string name, StopByOthers.Phase before, StopByOthers.Phase after, IReadOnlyList<StopAction> actions)
    {
        foreach (var label in S20Coverage.Labels(name, before, after, actions))
        {
            _covered.Add(label);
        }

        if (_options.Breakage != S20Breakage.None && actions is List<StopAction> list)
        {
            Break(list);
        }
    }

    /// <summary>Test only: rewrites the machine's decision the way <see cref="LinuxSimulationOptions.Breakage"/> says.</summary>
    private void Break(List<StopAction> actions)
    {
        for (var i = actions.Count - 1; i >= 0; i--)
        {
            switch (_options.Breakage, actions[i].Kind)
            {
                case (S20Breakage.ResumeInsteadOfPark, StopActionKind.Park):
                    actions[i] = StopAction.Resume(actions[i].Tid);
                    break;
                case (S20Breakage.ForgetResume, StopActionKind.ReportResumed):
                    actions.RemoveAt(i);
                    break;
            }
        }
    }

    /// <summary>After every pump and every answer.</summary>
    private void Check()
    {
        if (_violation is { } v)
        {
            throw new InvariantViolationException(v);
        }

        // Our traps never reach anyone else: a fork child runs (untraced) on a copy without them.
        foreach (var group in Kernel.Groups)
        {
            if (group.Pid == Pid || group.BorrowsMemory || Kernel.TracerPidOf(group.Pid) != 0 || !group.Live.Any())
            {
                continue;
            }

            if (group.Memory.Find(FakeImage.Int3).FirstOrDefault() is var address and not 0)
            {
                Fail($"process {group.Pid} (not ours) runs with an int3 at 0x{address:x}");
            }
        }

        // No int3 in the victim's text but the breakpoints the core has planted.
        if (Kernel.GroupOf(Pid) is { } victim && _process is not null)
        {
            foreach (var address in victim.Memory.Find(FakeImage.Int3))
            {
                if (!_patches.ContainsKey(address))
                {
                    Fail($"an int3 at 0x{address:x} that the core did not plant (or removed)");
                }
            }
        }
    }

    /// <summary>
    /// Nobody's continue is lost: after someone else's last SIGCONT and enough steps, with the owner and the core
    /// settled, no thread of the victim is left in a ptrace stop with nothing pending (parked, or held by us).
    /// </summary>
    private void CheckContinued()
    {
        var group = Kernel.GroupOf(Pid);
        if (group is null)
        {
            return;
        }

        if (group.StopStopped || group.GroupStopCount > 0)
        {
            Fail("the victim is in a group-stop after the last SIGCONT");
        }

        foreach (var t in group.Live)
        {
            if (t.State == TaskState.Traced && t.Report is null)
            {
                Fail($"thread {t.Tid} is left in a ptrace stop ({(t.IsListening ? "listening" : t.Stop?.Kind.ToString())}) after the last SIGCONT, with nothing pending");
            }
        }

        if (_held)
        {
            Fail("the core still holds the victim for others after the last SIGCONT");
        }
    }

    /// <summary>What a release leaves: nothing traced or in a ptrace stop, no int3, and the victim as the mode says.</summary>
    private void CheckReleased(bool heldByOthers)
    {
        foreach (var group in Kernel.Groups)
        {
            foreach (var t in group.Tasks)
            {
                if (t.Traced)
                {
                    Fail($"thread {t.Tid} of {group.Pid} is still traced after the release");
                }

                if (t.State == TaskState.Traced)
                {
                    Fail($"thread {t.Tid} of {group.Pid} is in a ptrace stop after the release");
                }
            }

            if (group.Live.Any() && group.Memory.Find(FakeImage.Int3).FirstOrDefault() is var address and not 0)
            {
                Fail($"process {group.Pid} keeps an int3 at 0x{address:x} after the release");
            }
        }

        var victim = Kernel.GroupOf(Pid);
        if (_gone)
        {
            return;
        }

        switch (Mode)
        {
            case ReleaseMode.Kill:
                if (victim is not null)
                {
                    Fail($"the victim is still there after a kill release ({string.Join(", ", victim.Tasks)})");
                }

                break;
            case ReleaseMode.Hang when heldByOthers:
                if (victim is null || victim.Live.Any(t => t.State != TaskState.Stopped))
                {
                    Fail($"the victim is not stopped after a hang release ({Describe(victim)})");
                }

                break;
            case ReleaseMode.Hang:
                // Hang leaves the victim in someone else's stop only while it lasts: their SIGCONT is the last word.
                CheckRuns(victim, "after a hang release whose stop someone else had ended");
                break;
            case ReleaseMode.Run when heldByOthers:
                // S20: someone else's stop outlives us, until they continue it.
                if (victim is null || victim.Live.Any(t => t.State != TaskState.Stopped))
                {
                    Fail($"our release ended someone else's stop ({Describe(victim)})");
                }

                Outsider(Sys.SIGCONT);
                Kernel.RunUntil(() => !Kernel.Outsider.HasWork, 1_000);
                Kernel.Run(100);
                CheckRuns(victim, "after their SIGCONT");
                break;
            case ReleaseMode.Run:
                CheckRuns(victim, "after a run release");
                break;
        }
    }

    private void CheckRuns(FakeThreadGroup? victim, string when)
    {
        if (victim is null || Kernel.GroupOf(Pid) is null)
        {
            return; // it may have exited on its own (a child exec'd image ends)
        }

        if (victim.Live.Any(t => t.State is TaskState.Stopped or TaskState.Traced))
        {
            Fail($"the victim does not run {when} ({Describe(victim)})");
        }
    }

    private static string Describe(FakeThreadGroup? group) =>
        group is null ? "gone" : string.Join(", ", group.Tasks.Select(t => t.ToString()));

    private void Record(string violation) => _violation ??= violation;

    private void Fail(string violation)
    {
        Record(violation);
        throw new InvariantViolationException(_violation!);
    }

    private void Note(string line) => Kernel.Log.Add(string.Create(CultureInfo.InvariantCulture, $"{Kernel.Steps,6} {line}"));

    /// <summary>The adapter's log, at trace level, into the seed's trace.</summary>
    private sealed class TraceLogger(List<string> log) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            log.Add("       adapter: " + formatter(state, exception));
    }
}

/// <summary>An invariant of the Linux simulation does not hold.</summary>
public sealed class InvariantViolationException : Exception
{
    public InvariantViolationException() { }

    public InvariantViolationException(string message) : base(message) { }

    public InvariantViolationException(string message, Exception inner) : base(message, inner) { }
}
