using ProcHex.Ports;
using Microsoft.Extensions.Logging;
using ProcHex.Elf;
using static ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux;

/// <summary>
/// One victim over ptrace. All ptrace work runs on the <see cref="OwnerThread"/>; port calls from other threads
/// are marshalled there. Stop events reach the core through a per-victim queue and a single pending waiter.
/// </summary>
/// <remarks>
/// Thread model: threads of a victim run independently ("non-stop"). A thread that stops for something the core
/// must see stays stopped until the core has taken the event and called <see cref="Resume"/>; other threads keep
/// running, so a hit on one thread never hides a hit on another, and every hit is reported with its own tid.
/// The whole victim is stopped ("held") after create, grab, <see cref="RequestStop"/>, a stop by others, and
/// while a breakpoint is single-stepped out of line; <see cref="Resume"/> lets all of it go again. Signals are
/// delivered by the backend at once (the core never sees <see cref="StopReason.Signal"/> from Linux); the stop
/// signals become a group-stop, reported as <see cref="StopReason.StoppedByOthers"/>.
/// </remarks>
internal sealed partial class LinuxProcess : ITracedProcess, IVictimMemory, ITraceeStatusSink, IDeferredCompletion, StopByOthers.IThreadTable
{
    internal const int BaseOptions = PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK
        | PTRACE_O_TRACEVFORKDONE | PTRACE_O_TRACEEXEC | PTRACE_O_TRACESYSGOOD;

    private readonly OwnerThread _owner;
    private readonly ILogger _logger;
    private readonly bool _created;
    private readonly Dictionary<int, VictimThread> _threads = [];
    private readonly Dictionary<ulong, byte> _planted = [];
    private readonly List<int> _vforkChildren = [];
    private readonly MemoryFile _memory;
    private readonly object _eventLock = new();
    private readonly Queue<(StopEvent Event, VictimThread? Thread)> _events = new();
    private readonly Lazy<ISymbolTable> _symbols;
    private readonly Action _resumeOnOwner;
    private readonly Action _handOverQueuedStop;
    private readonly StopWaiter _stopWaiter = new();
    private readonly StopByOthers _stops;
    private StopWaiter? _waiter;
    private StopWaiter? _answering;
    private List<VictimThread>? _stopTargets = [];
    private StopEvent _answeringStop;
    private StopEvent? _final;
    private TaskCompletionSource<LinuxProcess>? _seizing;
    private BreakpointPatch? _pendingStep;
    private HashSet<ulong>? _emulationFallbacks;
    private int _currentTid;
    private int _execs;
    private int _takenExecs;
    private bool _collecting;
    private volatile bool _dead;
    private bool _lost;
    private bool _released;

    internal LinuxProcess(OwnerThread owner, int pid, GrabAccess access, bool created, ILogger logger)
    {
        _owner = owner;
        Pid = pid;
        Access = access;
        _created = created;
        _logger = logger;
        _currentTid = pid;
        _memory = new MemoryFile(owner.Kernel, pid, OnImageGone);
        _symbols = new Lazy<ISymbolTable>(() => SymbolSource.CreateSymbolTable(owner.Kernel, pid, this));
        _resumeOnOwner = ResumeOnOwner;
        _handOverQueuedStop = HandOverQueuedStop;
        _stops = new StopByOthers(this);
        StartTime = ProcessIdentity.StartTime(owner.Kernel, pid);
        NamespacePid = ProcessIdentity.NamespacePid(owner.Kernel, pid);
    }

    /// <summary>The pid in the process's own pid namespace when that is not ours (issue 22 item 4), read at grab or create.</summary>
    public int? NamespacePid { get; }

    public int Pid { get; }

    /// <summary>Field 22 of /proc/PID/stat when this object was made: with the pid, the process's identity.</summary>
    public ulong? StartTime { get; }

    public bool WasReplaced() => ProcessIdentity.WasReplaced(Kernel, Pid, StartTime);

    public GrabAccess Access { get; }

    public ISymbolTable Symbols => _symbols.Value;

    /// <summary>The S20 machine of this victim (the simulation observes it).</summary>
    internal StopByOthers StopMachine => _stops;

    internal int Options => BaseOptions | (_created ? PTRACE_O_EXITKILL : 0);

    /// <summary>Off: every step-over goes out of line with all threads stopped (tests compare both paths).</summary>
    internal bool EmulationEnabled { get; set; } = true;

    /// <summary>Where <c>prochex.step_overs</c> is counted: the tracer's instruments.</summary>
    internal ProcHexMetrics Metrics { get; set; } = ProcHexMetrics.Shared;

    /// <summary>See <see cref="LinuxBackendOptions.AnswerStopsOnOwnerThread"/>; cleared for good by a slow answer.</summary>
    internal bool AnswerOnOwner { get; set; }

    internal long SlowAnswerTicks { get; set; } = System.Diagnostics.Stopwatch.Frequency / 5;

    bool StopByOthers.IThreadTable.Collecting => _collecting;

    bool StopByOthers.IThreadTable.AnyRunning => _threads.Values.Any(t => t.Running);

    /// <summary>Adds a thread we seized or that was born traced. Owner only.</summary>
    internal VictimThread AddThread(int tid, bool running)
    {
        var thread = new VictimThread(tid) { Running = running };
        _threads[tid] = thread;
        _owner.Register(tid, this);
        return thread;
    }

    public void BeginControl()
    {
        // The options that report clone, fork, vfork and exec were set when the victim was seized, because
        // threads born during a grab must already be followed; nothing is left to switch on here.
        ThrowIfReadOnly();
    }

    public ValueTask<StopEvent> WaitForStopAsync(CancellationToken cancellationToken)
    {
        ThrowIfReadOnly();
        ValueTask<StopEvent> wait;
        // A loop that answers on the owner never takes a queued stop here, off the owner: it would answer on this
        // thread for as long as the next stop happened to be queued before it asked, which is a matter of timing.
        // The owner hands the stop over instead, and the loop stays there from its first wait on.
        var moveToOwner = AnswerOnOwner && !_owner.IsCurrent;
        bool handOver;
        lock (_eventLock)
        {
            if (!moveToOwner && TryTakeLocked(out var ready))
            {
                return ValueTask.FromResult(ready);
            }

            if (_waiter is not null)
            {
                throw new InvalidOperationException($"pid {Pid}: a wait for a stop is already pending");
            }

            wait = _stopWaiter.Begin();
            _waiter = _stopWaiter;
            if (cancellationToken.CanBeCanceled)
            {
                // Under the lock, so no stop completes the wait before its cancellation is in place.
                _stopWaiter.CancelOn(ForgetWaiter, cancellationToken);
            }

            handOver = moveToOwner && _events.Count > 0;
        }

        if (handOver)
        {
            _owner.Post(_handOverQueuedStop);
        }

        return wait;
    }

    /// <summary>Answers a stop queued before the wait for it began, on the owner (see <see cref="WaitForStopAsync"/>).</summary>
    private void HandOverQueuedStop()
    {
        StopWaiter? waiter;
        StopEvent stop;
        lock (_eventLock)
        {
            waiter = _waiter;
            if (waiter is null || !TryTakeLocked(out stop))
            {
                return;
            }

            _waiter = null;
        }

        Answer(waiter, stop);
    }

    /// <summary>
    /// What a wait would return at once: a queued event, once the statuses the kernel already holds for our threads
    /// (and the owner has not read yet) have been handled; null otherwise. Never blocks.
    /// </summary>
    public StopEvent? TakeReadyStop()
    {
        ThrowIfReadOnly();
        return _owner.Invoke<StopEvent?>(() =>
        {
            foreach (var tid in _threads.Keys.ToArray())
            {
                _ = _owner.PollFor(tid);
            }

            lock (_eventLock)
            {
                if (_waiter is not null)
                {
                    throw new InvalidOperationException($"pid {Pid}: a wait for a stop is pending");
                }

                return TryTakeLocked(out var stop) ? stop : null;
            }
        });
    }

    /// <summary>True when the pending wait was still unclaimed by a stop and is now forgotten.</summary>
    private bool ForgetWaiter()
    {
        lock (_eventLock)
        {
            if (_waiter is null)
            {
                return false;
            }

            _waiter = null;
            return true;
        }
    }

    public void Resume()
    {
        ThrowIfReadOnly();
        _owner.Invoke(_resumeOnOwner);
    }

    /// <summary>
    /// The step over a breakpoint asked for since the last stop comes first; a failed one is reported after the
    /// threads run again, as a failed resume would be, so a victim never stays stopped because of it. Owner only.
    /// </summary>
    private void ResumeOnOwner()
    {
        if (!_dead && !_released && !_lost)
        {
            TakeLeaderStatus();
        }

        // A step asked for in answer to a stop taken before an exec is the old image's: nothing is left to step.
        var step = Volatile.Read(ref _takenExecs) == _execs ? _pendingStep : null;
        _pendingStep = null;
        if (_dead || _released || _lost)
        {
            return;
        }

        TracerException? stepFailure = null;
        if (step is { } patch)
        {
            try
            {
                StepOver(patch);
            }
            catch (TracerException e)
            {
                stepFailure = e;
                if (e.ErrorNumber == Interop.Errno.ESRCH && _currentTid == Pid && _threads.TryGetValue(Pid, out var leader))
                {
                    // The leader was killed out of the stop being answered (see ResumeIfFree): not resumed by the
                    // loop below, since the tid may pass to a thread that execs (linux simulation seed 8739).
                    leader.Running = true;
                }
            }

            if (_dead || _released || _lost)
            {
                return;
            }
        }

        DetachVforkChildren();
        _stops.CoreResumes();

        // ResumeIfFree changes no thread table: no copy is needed (this runs on every hit).
        foreach (var thread in _threads.Values)
        {
            ResumeIfFree(thread);
        }

        if (_stops.AnyMember)
        {
            Apply(_stops.CoreResumed());
        }

        if (stepFailure is not null)
        {
            throw stepFailure;
        }
    }

    public void AwaitExternalResume()
    {
        ThrowIfReadOnly();
        _owner.Invoke(() =>
        {
            if (_dead)
            {
                return;
            }

            // Without EXITKILL a crash of the tracer detaches the victim, and a detached victim in a group-stop
            // stays stopped: exactly what S20 asks for.
            Apply(_stops.AwaitResume(_threads.Keys));
        });
    }

    public void RequestStop()
    {
        if (Access == GrabAccess.ReadOnly || _dead)
        {
            return;
        }

        _owner.Invoke(() =>
        {
            if (_dead || _released)
            {
                return;
            }

            var stoppedSomething = StopAll();
            bool waiting;
            lock (_eventLock)
            {
                waiting = _waiter is not null;
            }

            if (!_dead && (stoppedSomething || waiting))
            {
                Deliver(StopEvent.Stopped(StopReason.Interrupted, Pid, 0), null);
            }
        });
    }

    public ulong ReadProgramCounter()
    {
        ThrowIfReadOnly();
        return _owner.Invoke(() => GetRegs(_currentTid).rip);
    }

    /// <summary>PTRACE_GETREGS on the owner: the thread is one stopped for the stop being answered.</summary>
    public X64Registers ReadRegisters(int threadId)
    {
        ThrowIfReadOnly();
        return _owner.Invoke(() => Registers.ToNeutral(GetRegs(threadId)));
    }

    public ulong ReadFirstArgument()
    {
        ThrowIfReadOnly();
        return _owner.Invoke(() => GetRegs(_currentTid).rdi);
    }

    public bool TryFindMainFromEntryCode(out ulong address) =>
        SymbolSource.TryFindMainFromEntryCode(Kernel, Pid, ReadOriginalText, out address);

    /// <summary>Up to <see cref="StartCode.WindowSize"/> bytes of text at <paramref name="address"/> as they were before our breakpoints.</summary>
    private byte[] ReadOriginalText(ulong address)
    {
        var text = new byte[StartCode.WindowSize];
        var n = ReadMemory(address, text);
        return _owner.Invoke(() =>
        {
            foreach (var (at, original) in _planted)
            {
                if (at >= address && at - address < (ulong)n)
                {
                    text[at - address] = original;
                }
            }

            return text[..n];
        });
    }

    /// <summary>From /proc: any thread, read-only handle or not, is listed without a ptrace call or a stop.</summary>
    public IReadOnlyList<ThreadSnapshot> ReadThreads() => Kernel.ThreadSnapshots(Pid);

    public BreakpointPatch PlantBreakpoint(ulong address)
    {
        ThrowIfReadOnly();
        return _owner.Invoke(() =>
        {
            if (_planted.TryGetValue(address, out var known))
            {
                return new BreakpointPatch(address, known, 1);
            }

            Span<byte> original = stackalloc byte[1];
            if (ReadMemory(address, original) != 1)
            {
                throw new TracerException($"pid {Pid}: no memory at 0x{address:x} for a breakpoint", TracerErrorKind.BadAddress, Interop.Errno.EFAULT);
            }

            _memory.Write(address, [Int3]);
            _planted[address] = original[0];
            return new BreakpointPatch(address, original[0], 1);
        });
    }

    public void RemoveBreakpoint(BreakpointPatch patch)
    {
        ThrowIfReadOnly();
        _owner.Invoke(() =>
        {
            // After exec the address belongs to a new image: forgetting is all that is left to do. So it is after an
            // exec we did not see (OnImageGone): the trap went with the image it was planted in.
            if (_planted.Remove(patch.Address) && !_dead && !_lost)
            {
                try
                {
                    _memory.Write(patch.Address, [(byte)patch.OriginalBytes]);
                }
                catch (TracerException) when (_lost)
                {
                }
            }
        });
    }

    /// <summary>
    /// The port asks for the original instruction to run once at the next <see cref="Resume"/>, and that is where
    /// it runs: a hit then costs one trip to the owner instead of two.
    /// </summary>
    public void StepOverBreakpoint(BreakpointPatch patch)
    {
        ThrowIfReadOnly();
        _pendingStep = patch;
    }

    public int ReadMemory(ulong address, Span<byte> destination)
    {
        if (destination.IsEmpty)
        {
            return 0;
        }

        var n = ReadWithVmReadv(address, destination, out var errno);
        if (n >= 0)
        {
            return n;
        }

        if (errno == Interop.Errno.ESRCH)
        {
            throw Failure($"cannot read memory of pid {Pid}", errno);
        }

        // Pages without read permission (or a kernel without process_vm_readv): /proc/PID/mem forces the read.
        var copy = new byte[destination.Length];
        var read = _owner.Invoke(() =>
        {
            try
            {
                return _memory.Read(address, copy);
            }
            catch (TracerException e) when (!e.IsGone)
            {
                return 0;
            }
        });
        copy.AsSpan(0, read).CopyTo(destination);
        return read;
    }

    int IVictimMemory.Read(ulong address, Span<byte> destination) => ReadMemory(address, destination);

    public void WriteMemory(ulong address, ReadOnlySpan<byte> source)
    {
        var copy = source.ToArray();
        _owner.Invoke(() => _memory.Write(address, copy));
    }

    public IRtldAgent? OpenRtldAgent() => SymbolSource.OpenRtldAgent(Kernel, Pid, this, Symbols);

    public void Release(ReleaseMode mode)
    {
        if (Access == GrabAccess.ReadOnly)
        {
            _released = true;
            return;
        }

        _owner.Invoke(() => ReleaseOnOwner(mode));
    }

    public void Dispose()
    {
        if (!_released && Access == GrabAccess.Control)
        {
            try
            {
                Release(_created ? ReleaseMode.Kill : ReleaseMode.Run);
            }
            catch (TracerException e)
            {
                Log.BestEffortFailed(_logger, Pid, "release on dispose", e.Message);
            }
        }

        _released = true;
        _owner.Invoke(_memory.Dispose);
    }

    // ---- owner-thread internals -------------------------------------------------------------------------

    public void OnStatus(int tid, WaitStatus status)
    {
        HandleStatus(tid, status);
        if (_seizing is not null)
        {
            CheckSeized();
        }
    }

    /// <summary>
    /// A grab's end: completes once every seized thread has reported its first stop, or the victim died. The
    /// owner keeps dispatching meanwhile, so a thread that cannot stop yet (a leader waiting in vfork for a child
    /// that has not exec'd) holds up this grab only, not every other victim. Owner only.
    /// </summary>
    internal Task<LinuxProcess> AwaitSeizedThreads()
    {
        _seizing = new TaskCompletionSource<LinuxProcess>(TaskCreationOptions.RunContinuationsAsynchronously);
        var seized = _seizing.Task;
        CheckSeized();
        return seized;
    }

    private void CheckSeized()
    {
        var seizing = _seizing!;
        if (_dead)
        {
            _seizing = null;
            ReleaseOnOwner(ReleaseMode.Run);
            seizing.SetException(new GrabException("no such process (it exited while being grabbed)", TracerErrorKind.Gone, Interop.Errno.ESRCH));
        }
        else if (!_threads.Values.Any(t => t.Running))
        {
            _seizing = null;
            Log.Grabbed(_logger, Pid, _threads.Count);
            seizing.SetResult(this);
        }
    }

    private void HandleStatus(int tid, WaitStatus status)
    {
        if (!_threads.TryGetValue(tid, out var thread))
        {
            return;
        }

        if (_logger.IsEnabled(LogLevel.Trace))
        {
            Log.ThreadStatus(_logger, Pid, tid, status.ToString());
        }

        if (status.Ended)
        {
            ThreadEnded(thread, status);
            return;
        }

        thread.Running = false;
        var signal = status.StopSignal;
        switch (status.Event)
        {
            case PTRACE_EVENT_STOP:
                Apply(signal == SIGTRAP ? _stops.TrapStopReported(tid) : _stops.GroupStopReported(tid));

                break;
            case PTRACE_EVENT_CLONE:
                AdoptThread((int)GetEventMessage(tid));
                ResumeIfFree(thread);
                break;
            case PTRACE_EVENT_FORK:
                DetachForkChild((int)GetEventMessage(tid));
                Deliver(StopEvent.Stopped(StopReason.ForkDone, tid, 0), thread);
                break;
            case PTRACE_EVENT_VFORK:
                CollectVforkChild((int)GetEventMessage(tid));
                Deliver(StopEvent.Stopped(StopReason.ForkStarting, tid, 0), thread);
                break;
            case PTRACE_EVENT_VFORK_DONE:
                Deliver(StopEvent.Stopped(StopReason.VforkDone, tid, 0), thread);
                break;
            case PTRACE_EVENT_EXEC:
                OnExec();
                break;
            case 0 when signal == SIGTRAP:
                OnTrap(thread);
                break;
            case 0 when signal == (SIGTRAP | 0x80):
                // A syscall stop we did not ask for (left from the launch): nothing to report.
                ResumeIfFree(thread);
                break;
            default:
                // A signal about to be delivered: deliver it. Stop signals come back as a group-stop.
                thread.InjectSignal = signal;
                ResumeIfFree(thread);
                break;
        }
    }

    /// <summary>
    /// Carries out what <see cref="StopByOthers"/> decided. The machine's own list is read as it stands: nothing done
    /// here raises another event in it (a listen's outcome only updates a member). Owner only.
    /// </summary>
    private void Apply(IReadOnlyList<StopAction> actions)
    {
        for (var i = 0; i < actions.Count; i++)
        {
            var action = actions[i];
            switch (action.Kind)
            {
                case StopActionKind.Park:
                    Park(action.Tid);
                    break;
                case StopActionKind.Resume when _threads.TryGetValue(action.Tid, out var thread):
                    ResumeIfFree(thread);
                    break;
                case StopActionKind.RestoreOptions when action.Tid == 0:
                    foreach (var tid in _threads.Keys)
                    {
                        _ = TryPtrace(PTRACE_SETOPTIONS, tid, 0, Options);
                    }

                    break;
                case StopActionKind.RestoreOptions:
                    _ = TryPtrace(PTRACE_SETOPTIONS, action.Tid, 0, Options);
                    break;
                case StopActionKind.DropExitKill:
                    _ = TryPtrace(PTRACE_SETOPTIONS, action.Tid, 0, BaseOptions);
                    break;
                case StopActionKind.ReportStopped:
                    Deliver(StopEvent.Stopped(StopReason.StoppedByOthers, Pid, 0), null);
                    break;
                case StopActionKind.ReportResumed:
                    Deliver(StopEvent.Stopped(StopReason.ResumedByOthers, Pid, 0), null);
                    break;
            }
        }
    }

    /// <summary>
    /// PTRACE_LISTEN keeps a thread stopped while someone else's stop lasts and wakes it, reporting SIGTRAP, once it
    /// is over: a SIGCONT that comes before every thread has reported the group-stop would otherwise leave the ones
    /// that did in a plain trap-stop for good (chaos seed 11). Options first (a listening thread takes no requests):
    /// while the stop lasts, a crash of the tracer must leave even a created victim stopped (S20), so no EXITKILL;
    /// it comes back with the resume. Owner only.
    /// </summary>
    private void Park(int tid)
    {
        Log.Step(_logger, Pid, $"listen {tid}");
        _ = TryPtrace(PTRACE_SETOPTIONS, tid, 0, BaseOptions);
        _stops.ListenReturned(tid, TryPtrace(PTRACE_LISTEN, tid, 0, 0) == 0);
    }

    /// <summary>
    /// A thread other than the leader that calls execve takes over the leader's tid once the kernel has killed the old
    /// leader, even one we hold in a ptrace stop (de_thread, exchange_tids), and stops in PTRACE_EVENT_EXEC: from then
    /// on the tid we believe stopped at the old leader's stop names the new one, whose exec report is pending. A
    /// PTRACE_CONT, SETREGS or SINGLESTEP acting on the old stop would act on the exec stop instead, and resuming drops
    /// its uncollected report (ptrace_resume): the exec would go unseen, the breakpoints of the old image would stay
    /// planted in our books and the memory file bound to the dead mm (linux simulation seeds 1806 and 9802). So the
    /// leader's pending status is handled before the leader is acted on: one it is already kept (read by a sub-wait
    /// for another tid) costs nothing; the kernel is asked (one WNOHANG waitpid) only while another thread exists that
    /// could be exec'ing. Owner only.
    /// </summary>
    private void TakeLeaderStatus()
    {
        if (_threads.TryGetValue(Pid, out var leader) && !leader.Running)
        {
            _ = _owner.PollFor(Pid, askKernel: _threads.Count > 1);
        }
    }

    private void OnTrap(VictimThread thread)
    {
        var code = GetSignalCode(thread.Tid);
        if (code == SI_KERNEL)
        {
            var regs = GetRegs(thread.Tid);
            var address = TrapSiteFromPc(regs.rip);
            if (_planted.ContainsKey(address) || !IsTrapAt(address))
            {
                // Ours, or ours until the core removed it a moment ago: either way the original instruction
                // must run again, so the PC goes back to the breakpoint before anything else happens.
                regs.rip = address;
                SetRegs(thread.Tid, regs);
                if (_planted.ContainsKey(address))
                {
                    Deliver(StopEvent.Stopped(StopReason.Breakpoint, thread.Tid, address), thread);
                }
                else
                {
                    ResumeIfFree(thread);
                }

                return;
            }
        }

        // A SIGTRAP someone sent, or an int3 compiled into the program: the program's business.
        thread.InjectSignal = SIGTRAP;
        ResumeIfFree(thread);
    }

    private bool IsTrapAt(ulong address)
    {
        Span<byte> b = stackalloc byte[1];
        return ReadWithVmReadv(address, b, out _) == 1 && b[0] == Int3;
    }

    private void OnExec()
    {
        // The kernel reports the exec on the leader's tid whichever thread called it; the others are gone.
        foreach (var other in _threads.Keys.Where(t => t != Pid).ToArray())
        {
            _threads.Remove(other);
            _owner.Unregister(other);
        }

        if (!_threads.ContainsKey(Pid))
        {
            AddThread(Pid, running: false);
        }

        lock (_eventLock)
        {
            // Events of the threads exec just destroyed can no longer be handled (their tids are gone). The leader's
            // are the old leader's: a thread with an event queued is held, so it cannot have called exec itself; the
            // thread that did took over the tid (see TakeLeaderStatus).
            var kept = _events.Where(e => e.Thread is null).ToList();
            foreach (var e in _events)
            {
                if (e.Thread is not null)
                {
                    Interlocked.Decrement(ref e.Thread.Undelivered);
                }
            }

            _events.Clear();
            foreach (var e in kept)
            {
                _events.Enqueue(e);
            }
        }

        // The leader's entry may be the old leader's, which exec replaced with the thread that called it: whatever
        // group-stop it was in is over (nobody stops in the middle of an exec).
        var leader = _threads[Pid];
        leader.Running = false;
        leader.InjectSignal = 0;
        Apply(_stops.Exec());

        // A fork or vfork event of a thread the exec destroyed is lost: its child, ours and stopped, is let go here.
        LetGoOfOrphanedForkChildren(afterExec: true);
        _planted.Clear();
        _emulationFallbacks = null;
        _memory.Reopen();
        _pendingStep = null;
        lock (_eventLock)
        {
            // Under the lock: a stop the core takes from now on is the new image's (see ResumeOnOwner).
            _execs++;
        }
        var pc = GetRegs(Pid).rip;
        if (CheckObservable(pc))
        {
            Deliver(StopEvent.Stopped(StopReason.ExecDone, Pid, pc), leader);
        }
    }

    /// <summary>The message of the lost path (S2) when an exec leaves us a process we cannot observe.</summary>
    internal const string UnobservableMessage = "process exec'd set-id or unobservable program";

    /// <summary>
    /// After an exec (the trampoline's included): may we, as this victim's tracer, still access the new image?
    /// Linux never lets a set-id program gain privileges under a tracer that is not privileged to trace it (the
    /// kernel runs it with the old ids, and we keep full control: no loss). But an image the exec'ing process may
    /// not read (execute-only, set-id or not) makes it non-dumpable: ptrace stays attached, yet the kernel refuses
    /// every memory access of an unprivileged tracer, so nothing can be read or planted. That is control lost,
    /// reported as <see cref="StopKind.Lost"/> with the S2 message; the victim stays stopped until released. So is
    /// an image that is not x86-64 (issue 17 item 4), with a message that names its architecture.
    /// The probe is PTRACE_PEEKDATA, which checks the credentials we attached with. Owner only.
    /// </summary>
    internal bool CheckObservable(ulong pc)
    {
        if (ArchitectureCheck.Foreign(Kernel, Pid) is { } architecture)
        {
            // An exec into a program that is not x86-64 (issue 17 item 4): nothing of it can be read or planted right.
            _lost = true;
            _stops.Hold();
            Deliver(StopEvent.Lost(Pid, $"process exec'd a program of an unsupported architecture: {architecture}"), null);
            return false;
        }

        var error = TryPeekData(Pid, pc);
        if (error is 0 or Interop.Errno.ESRCH)
        {
            return true;
        }

        Log.BestEffortFailed(_logger, Pid, "reading the new image", DescribeError(error));
        _lost = true;
        _stops.Hold();
        Deliver(StopEvent.Lost(Pid, UnobservableMessage), null);
        return false;
    }

    /// <summary>The message of the lost path when the victim exec'd and we never saw the exec's stop.</summary>
    internal const string ExecUnseenMessage = "process exec'd in a thread other than the leader while the leader was being resumed: its exec went unseen";

    /// <summary>
    /// The memory file met a dead address space (<see cref="MemoryFile"/>): the process is dying, or it exec'd and the
    /// exec's stop went unseen. That happens when another thread's exec completes between the WNOHANG check for the
    /// leader's tid (<see cref="TakeLeaderStatus"/>) and the PTRACE_CONT we meant for the old leader's stop: the
    /// thread that exec'd holds the leader's tid by then, stopped in PTRACE_EVENT_EXEC, and the CONT resumes it,
    /// dropping the report (ptrace_resume clears exit_code). No check before the CONT can close that window, and
    /// PTRACE_O_TRACEEXIT cannot stop the old leader on its way out (ptrace_stop skips a task with SIGKILL pending).
    /// An exec leaves a sign that dying does not: the thread that called it left its own tid without a report to
    /// us (ptrace(2), "execve(2) under ptrace"), where a dying thread stays in /proc/PID/task until we reap it. With
    /// that sign the victim is reported lost, and its traps are forgotten, since they went with the old image.
    /// Owner only.
    /// </summary>
    private void OnImageGone()
    {
        if (_dead || _lost)
        {
            return;
        }

        var live = Kernel.Threads(Pid);
        List<VictimThread>? vanished = null;
        foreach (var thread in _threads.Values)
        {
            if (thread.Tid != Pid && !live.Contains(thread.Tid) && !_owner.HasPendingStatus(thread.Tid))
            {
                (vanished ??= []).Add(thread);
            }
        }

        if (vanished is null || live.Count == 0)
        {
            return;
        }

        foreach (var thread in vanished)
        {
            ThreadEnded(thread, new WaitStatus(0)); // its old tid left without a report: it is the thread that exec'd
        }

        Log.BestEffortFailed(_logger, Pid, "following the victim", ExecUnseenMessage);
        _planted.Clear();
        _pendingStep = null;
        _lost = true;
        _stops.Hold();
        Deliver(StopEvent.Lost(Pid, ExecUnseenMessage), null);
    }

    private void ThreadEnded(VictimThread thread, WaitStatus status)
    {
        _threads.Remove(thread.Tid);
        _owner.Unregister(thread.Tid);
        if (thread.Tid != Pid)
        {
            // It may have been the last thread yet to join a group-stop, or to leave one.
            Apply(_stops.ThreadGone(thread.Tid));
            return;
        }

        // The leader's status comes last, once the whole group is gone.
        foreach (var t in _threads.Keys)
        {
            _owner.Unregister(t);
        }

        _threads.Clear();
        _stops.Clear();
        _dead = true;

        // A vfork child waits, stopped, for the next Resume to let it go; a parent that died first never gets one.
        // It shares the dead parent's memory: our traps come out before it runs on untraced (chaos seed 5).
        foreach (var child in _vforkChildren)
        {
            RestoreTextIn(child);
        }

        DetachVforkChildren();
        var exit = status.ToExitStatus();
        if (exit.Signaled)
        {
            LetGoOfOrphanedForkChildren();
        }

        _planted.Clear();
        Deliver(StopEvent.Exited(Pid, exit), null);
    }

    /// <summary>A thread born from clone: collect its first stop, then let it run (unless the victim is held).</summary>
    private void AdoptThread(int tid)
    {
        if (tid <= 0 || _threads.ContainsKey(tid))
        {
            return;
        }

        var thread = AddThread(tid, running: true);
        var status = _owner.WaitFor(tid);
        if (status is not { } s)
        {
            _threads.Remove(tid);
            _owner.Unregister(tid);
            return;
        }

        // Its first stop reports SIGSTOP rather than SIGTRAP when it was born into a group-stop: OnStatus tells.
        OnStatus(tid, s);
    }

    /// <summary>fork: the child has a copy of our breakpoints. Take them out of its memory, then let it go.</summary>
    private void DetachForkChild(int child)
    {
        if (child <= 0 || _owner.WaitFor(child) is not { Stopped: true })
        {
            return;
        }

        RestoreTextIn(child);
        _ = TryPtrace(PTRACE_DETACH, child, 0, 0);
        Log.ForkChildDetached(_logger, Pid, child);
    }

    /// <summary>vfork: the child shares our memory, so it is let go only after the core took the breakpoints out.</summary>
    private void CollectVforkChild(int child)
    {
        if (child > 0 && _owner.WaitFor(child) is { Stopped: true })
        {
            _vforkChildren.Add(child);
        }
    }

    private void DetachVforkChildren()
    {
        foreach (var child in _vforkChildren)
        {
            _ = TryPtrace(PTRACE_DETACH, child, 0, 0);
        }

        _vforkChildren.Clear();
    }

    private void RestoreTextIn(int pid)
    {
        foreach (var (address, original) in _planted)
        {
            try
            {
                MemoryFile.WriteOnce(Kernel, pid, address, [original]);
            }
            catch (TracerException e)
            {
                Log.BestEffortFailed(_logger, pid, $"restoring text at 0x{address:x}", e.Message);
            }
        }
    }

    private void ResumeIfFree(VictimThread thread)
    {
        // A status the owner already took from the kernel for it but has not dispatched yet (kept by a sub-wait for
        // another tid) is a stop nobody has handled: resuming would lose it (linux simulation seed 2564: another
        // thread's exec took the stopped leader's tid, and its exec event, then a clone event, went unread).
        // The leader's tid may also name a thread that exec'd since we saw the leader stop (TakeLeaderStatus): the
        // kernel is asked for its report while another thread could be exec'ing, and the dispatch loop hands it over
        // before anything resumes the tid.
        if (thread.Running || Volatile.Read(ref thread.Undelivered) > 0 || !_stops.MayResume(thread.Tid)
            || _owner.HasPendingStatus(thread.Tid, askKernel: thread.Tid == Pid && _threads.Count > 1))
        {
            return;
        }

        var signal = thread.InjectSignal;
        thread.InjectSignal = 0;
        _stops.Resumed(thread.Tid);
        if (_logger.IsEnabled(LogLevel.Trace))
        {
            Log.Step(_logger, Pid, $"cont {thread.Tid} sig {signal}");
        }

        var error = TryPtrace(PTRACE_CONT, thread.Tid, 0, signal);
        if (error == 0 || (error == Interop.Errno.ESRCH && thread.Tid == Pid))
        {
            // ESRCH: the leader was killed out of its stop (an exec by another thread, an exit_group): it is no longer
            // held, and its next report says what became of it; above all, the tid is not resumed again until then,
            // since a thread that execs takes it over (TakeLeaderStatus; linux simulation seed 1580).
            thread.Running = true;
        }
    }

    /// <summary>
    /// Stops every running thread and collects its stop (whatever it reports is recorded, nothing is resumed).
    /// Returns true when at least one thread had to be stopped.
    /// </summary>
    private bool StopAll()
    {
        _stops.StopAllBegins();
        var stopped = false;

        // The plain step-over stops every thread on every hit: the list is reused (taken, so a nested call would
        // get its own), and nothing else here allocates.
        var targets = _stopTargets ?? [];
        _stopTargets = null;
        foreach (var thread in _threads.Values)
        {
            if (!thread.Running && !_stops.IsParked(thread.Tid))
            {
                continue;
            }

            _stops.Interrupted(thread.Tid);
            thread.Running = true;

            // ESRCH: the thread is exiting; its exit status reaches the main loop.
            if (_logger.IsEnabled(LogLevel.Trace))
            {
                Log.Step(_logger, Pid, $"interrupt {thread.Tid}");
            }

            if (TryPtrace(PTRACE_INTERRUPT, thread.Tid, 0, 0) == 0)
            {
                targets.Add(thread);
            }
        }

        _collecting = true;
        try
        {
            foreach (var thread in targets)
            {
                while (_threads.ContainsKey(thread.Tid) && thread.Running && CollectNext(thread))
                {
                    stopped = true;
                }
            }
        }
        finally
        {
            _collecting = false;
            targets.Clear();
            _stopTargets = targets;
        }

        return stopped;
    }

    private void StepOver(BreakpointPatch patch)
    {
        if (_dead)
        {
            return;
        }

        var tid = _currentTid;
        var regs = GetRegs(tid);
        if (regs.rip != patch.Address)
        {
            throw new TracerException($"pid {Pid}: thread {tid} is at 0x{regs.rip:x}, not at the breakpoint 0x{patch.Address:x}");
        }

        Span<byte> code = stackalloc byte[16];
        var n = ReadWithVmReadv(patch.Address, code, out _);
        if (n > 0)
        {
            code = code[..n];
            foreach (var (address, original) in _planted)
            {
                if (address >= patch.Address && address < patch.Address + (ulong)n)
                {
                    code[(int)(address - patch.Address)] = original;
                }
            }

            code[0] = (byte)patch.OriginalBytes;
            var emulated = Registers.ToNeutral(regs);
            if (EmulationEnabled && InstructionEmulator.TryEmulate(ref emulated, code, out var write)
                && TryApplyEmulation(tid, patch.Address, Registers.FromNeutral(emulated, regs), write))
            {
                Metrics.RecordStepOver(StepOverKind.Emulated);
                return;
            }
        }

        StepOutOfLine(tid, patch);
    }

    /// <summary>
    /// Applies an emulated instruction's effect: its store first, then the registers, so a store that fails leaves the
    /// thread exactly as it stopped. False when the effect could not be applied (the store's page cannot be written
    /// from here, the registers were refused): the caller steps the instruction out of line instead, for this hit only,
    /// because resuming the thread on its trap would make it hit again forever. A re-run store writes the same bytes.
    /// </summary>
    private bool TryApplyEmulation(int tid, ulong site, in Interop.UserRegs emulated, MemoryWrite? write)
    {
        try
        {
            if (write is { } w)
            {
                _memory.Write(w.Address, w.Bytes(stackalloc byte[8]));
            }

            SetRegs(tid, emulated);
            return true;
        }
        catch (TracerException e) when (!e.IsGone && !_dead)
        {
            // Seen for real: a push just below a stack that has yet to grow. The victim's own fault grows it, but a
            // write through /proc/PID/mem grows it only within the tracer's RLIMIT_STACK (acct_stack_growth reads the
            // caller's limit), and process_vm_writev never does since Linux 6.5.
            _emulationFallbacks ??= [];
            if (_emulationFallbacks.Add(site))
            {
                Log.EmulationFellBack(_logger, Pid, site, e.Message);
            }

            return false;
        }
    }

    /// <summary>All-stop single-step: every other thread is stopped while the original instruction is back.</summary>
    private void StepOutOfLine(int tid, BreakpointPatch patch)
    {
        var execs = _execs;
        _ = StopAll();

        // Stopping the others may have reaped the last thread an exec waited for: its report, on the leader's tid, is
        // kept by the owner (TakeLeaderStatus), and after it there is nothing left to step (linux simulation seed 1806).
        TakeLeaderStatus();
        if (_execs != execs || !_threads.TryGetValue(tid, out var thread) || _owner.HasPendingStatus(tid))
        {
            // It ended while the others stopped (another thread's exec, an exit_group): nothing is left to step. A
            // status kept for its tid says so too: a stopped thread reports nothing new unless it died, or unless
            // another thread's exec gave the leader's tid to the exec'ing thread, whose exec event that is (the old
            // leader never reports; linux simulation seed 2564). Stepping it would step the new image.
            return;
        }

        Metrics.RecordStepOver(StepOverKind.OutOfLine);
        _memory.Write(patch.Address, [(byte)patch.OriginalBytes]);
        try
        {
            while (true)
            {
                if (TryPtrace(PTRACE_SINGLESTEP, tid, 0, 0) != 0)
                {
                    return;
                }

                thread.Running = true;
                var next = _owner.WaitFor(tid);
                if (next is not { } status || status.Ended)
                {
                    ThreadEnded(thread, next ?? new WaitStatus(0));
                    return;
                }

                thread.Running = false;
                if (status.Event == 0 && status.StopSignal == SIGTRAP)
                {
                    return;
                }

                if (status.Event == PTRACE_EVENT_STOP && status.StopSignal != SIGTRAP)
                {
                    // Its part of someone else's group-stop, before the instruction ran: stepping on would end that
                    // part (S20; linux simulation seed 5). The machine takes the report (parks it); the step is
                    // abandoned with the PC still at the breakpoint, which the thread meets again once it runs.
                    _owner.Dispatch(tid, status);
                    return;
                }

                if (status.Event == PTRACE_EVENT_STOP)
                {
                    // A PTRACE_INTERRUPT left pending by an earlier stop-all fired before the instruction ran.
                    continue;
                }

                if (status.Event == 0)
                {
                    // A signal arrived before the instruction ran: deliver it at the real resume, step again. Two
                    // kinds end the step here instead, the PC still on the instruction (met again once the thread
                    // runs), the real resume delivering the signal from this stop:
                    // - a fault the instruction raised (si_code > 0: a store through a wild rbp, a page nobody maps):
                    //   stepping again would fault again, forever; delivered, it acts as it would untraced;
                    // - a stop signal: it can be given back only from the signal-delivery-stop it was dequeued in,
                    //   where a SIGCONT sent meanwhile cancels it (do_signal_stop acts only while
                    //   JOBCTL_STOP_DEQUEUED is set, which SIGCONT clears and every signal-delivery-stop sets again).
                    //   Given back from the step's own stop it would start a stop that a SIGCONT had already ended,
                    //   leaving the victim stopped after someone else's last word (linux simulation seed 71515).
                    thread.InjectSignal = status.StopSignal;
                    if (status.StopSignal is SIGSTOP or SIGTSTP or SIGTTIN or SIGTTOU
                        || (status.StopSignal is SIGSEGV or SIGBUS or SIGILL or SIGFPE && GetSignalCode(tid) > 0))
                    {
                        return;
                    }

                    continue;
                }

                // An event in the middle of the step (the instruction was a clone or fork syscall).
                _owner.Dispatch(tid, status);
                return;
            }
        }
        finally
        {
            if (!_dead && _planted.ContainsKey(patch.Address))
            {
                _memory.Write(patch.Address, [Int3]);
            }
        }
    }

    private void ReleaseOnOwner(ReleaseMode mode)
    {
        if (_released)
        {
            return;
        }

        _released = true;
        _pendingStep = null;
        if (_dead)
        {
            Forget();
            return;
        }

        if (mode == ReleaseMode.Kill)
        {
            KillAndReap();
            Log.Released(_logger, Pid, mode.ToString());
            return;
        }

        _ = StopAll();
        TakePendingTraps();
        foreach (var (address, original) in _planted)
        {
            try
            {
                _memory.Write(address, [original]);
            }
            catch (TracerException) when (_lost)
            {
                break; // exec'd unseen: the traps went with the old image (OnImageGone)
            }
            catch (TracerException e)
            {
                Log.BestEffortFailed(_logger, Pid, $"restoring text at 0x{address:x}", e.Message);
            }
        }

        _planted.Clear();
        DetachVforkChildren();
        if (mode == ReleaseMode.Hang)
        {
            // Hang: the victim gets a SIGSTOP, queued before the detach so that it stays put. Not as the detach's
            // signal: the threads are in interrupt stops, and a signal given to a restart from any stop but a
            // signal-delivery-stop is ignored (ptrace(2), "Signal injection and suppression"; linux simulation seed 37
            // left a hang-released victim running). Even when its threads reported someone else's group-stop: a
            // SIGCONT since then leaves each with only a notice it reports once resumed, which the detach discards,
            // so the victim would run (linux simulation seed 37519). Still in that stop, the victim takes its part
            // again once detached (__ptrace_unlink sets JOBCTL_STOP_PENDING, handled before any signal is dequeued),
            // and the SIGSTOP waits in the queue until the SIGCONT that ends the stop flushes it (prepare_signal).
            _ = Kill(Pid, SIGSTOP);
        }

        foreach (var thread in _threads.Values)
        {
            _ = TryPtrace(PTRACE_DETACH, thread.Tid, 0, thread.InjectSignal);
        }

        // Run: a victim that stops again once detached was stopped by someone else (a SIGSTOP still pending while we
        // held it, or a group-stop nobody has continued): that stop is theirs to end, not ours (S20, chaos seed 15).
        Forget();
        if (mode == ReleaseMode.Hang)
        {
            AwaitGroupStop();
        }

        Log.Released(_logger, Pid, mode.ToString());
    }

    /// <summary>
    /// A thread that ran into one of our traps just as a stop-all interrupted it reports the interrupt first and
    /// keeps the SIGTRAP queued: detached like that, it takes the signal untraced and the victim dies of it (seen in
    /// the release race test, about once in 30 runs). Resumed while still ours, it takes the signal at once, before
    /// any instruction, as an ordinary trap stop that <see cref="OnTrap"/> answers: the PC goes back to the
    /// breakpoint and the signal is dropped. A thread in someone else's group-stop leaves it to do that, so it is
    /// detached with SIGSTOP, which puts it back into the stop. Owner only.
    /// </summary>
    /// <remarks>
    /// It is part of the release's collection, like a stop-all's: a group-stop a resumed thread reports is recorded,
    /// not parked. A thread in PTRACE_LISTEN takes no request but PTRACE_INTERRUPT and PTRACE_KILL (ptrace_check_attach
    /// fails on JOBCTL_LISTENING), so the PTRACE_DETACH that follows would fail with ESRCH and leave it traced for good
    /// (linux simulation seed 8106).
    /// </remarks>
    private void TakePendingTraps()
    {
        _collecting = true;
        try
        {
            TakePendingTrapsCollecting();
        }
        finally
        {
            _collecting = false;
        }
    }

    private void TakePendingTrapsCollecting()
    {
        foreach (var thread in _threads.Values.ToArray())
        {
            // A signal it stopped for waits for the detach: delivered now, its handler's frame would come first.
            var held = thread.InjectSignal;
            thread.InjectSignal = 0;
            var resumed = false;
            for (var attempt = 0; attempt < 4 && _threads.ContainsKey(thread.Tid) && !thread.Running && HasPendingKernelTrap(thread.Tid); attempt++)
            {
                Log.Step(_logger, Pid, $"thread {thread.Tid} has a trap pending: take it before the detach");
                resumed |= ResumeAndCollect(thread);
            }

            if (thread.InjectSignal == 0)
            {
                thread.InjectSignal = held != 0 ? held : resumed && _stops.IsMember(thread.Tid) ? SIGSTOP : 0;
            }
        }
    }

    /// <summary>Resumes a held thread and handles its next status (the victim stays held). False when it did not run.</summary>
    private bool ResumeAndCollect(VictimThread thread)
    {
        if (TryPtrace(PTRACE_CONT, thread.Tid, 0, 0) != 0)
        {
            return false;
        }

        thread.Running = true;
        _ = CollectNext(thread);
        return true;
    }

    /// <summary>Waits for the thread's next status and handles it; false when it is no longer ours (gone). Owner only.</summary>
    private bool CollectNext(VictimThread thread)
    {
        if (_owner.WaitFor(thread.Tid) is not { } status)
        {
            ThreadEnded(thread, new WaitStatus(0));
            return false;
        }

        _owner.Dispatch(thread.Tid, status);
        return true;
    }

    /// <summary>
    /// After a detach the kernel wakes a thread that owes a group-stop so it can re-enter it: for a moment the
    /// victim shows as running. Hang promises a stopped victim, so wait (briefly, bounded) until it shows 'T'.
    /// </summary>
    private void AwaitGroupStop()
    {
        for (var i = 0; i < 200 && Kernel.State(Pid) is { } state && state != 'T'; i++)
        {
            Kernel.Sleep(1);
        }
    }

    private void KillAndReap()
    {
        _ = Kill(Pid, SIGKILL);
        foreach (var child in _vforkChildren)
        {
            _ = Kill(child, SIGKILL);
            _ = _owner.WaitFor(child);
        }

        _vforkChildren.Clear();

        // The leader is reaped only after every other thread, and that includes a thread born just before the kill
        // whose clone event the kill swallowed: traced by us all the same, unknown to the table, listed in /proc
        // until reaped (waiting for the leader alone would block for good). No thread is born after a SIGKILL.
        foreach (var tid in _threads.Keys.Concat(Kernel.Threads(Pid)).Where(t => t != Pid).Distinct().ToArray())
        {
            Reap(tid);
        }

        Reap(Pid);

        _dead = true;
        LetGoOfOrphanedForkChildren();
        Forget();
        Deliver(StopEvent.Exited(Pid, ExitStatus.FromSignal(SIGKILL)), null);
    }

    private void Reap(int tid)
    {
        while (_owner.WaitFor(tid) is { } status && !status.Ended)
        {
        }
    }

    /// <summary>
    /// A victim killed in the middle of a fork (SIGKILL, or exit_group from another thread) takes the fork event
    /// with it, yet the kernel has already attached the new child to us: unclaimed, it would wait in its first
    /// stop, traced, for good (chaos seed 5). A process we trace that is no victim's and whose parent we do not
    /// trace is such a child (the parent of a live victim's child is traced: its event is on the way, and a vfork
    /// child waiting for the next Resume has a traced parent too): it is let go like any fork
    /// child, without the breakpoints it copied. After a death by a signal, or after an exec (<paramref name="afterExec"/>):
    /// exec kills every other thread, one that sat in an unread fork event included, so a child of ours with a traced
    /// parent is orphaned too (linux simulation seed 80). Owner only.
    /// </summary>
    private void LetGoOfOrphanedForkChildren(bool afterExec = false)
    {
        var self = Kernel.GetTid();
        foreach (var pid in Kernel.Processes())
        {
            if (pid == Pid || _owner.IsRegistered(pid) || _vforkChildren.Contains(pid) || Kernel.TracerPid(pid) != self
                || Kernel.StatField(pid, 4) is not { } parent || parent == (ulong)Environment.ProcessId
                || (Kernel.TracerPid((int)parent) == self && !(afterExec && parent == (ulong)Pid)))
            {
                continue;
            }

            DetachForkChild(pid);
        }
    }

    private void Forget()
    {
        foreach (var tid in _threads.Keys)
        {
            _owner.Unregister(tid);
        }

        _threads.Clear();
        _stops.Clear();
        _planted.Clear();
    }

    private void Deliver(StopEvent stop, VictimThread? thread)
    {
        if (thread is not null)
        {
            Interlocked.Increment(ref thread.Undelivered);
        }

        StopWaiter? waiter;
        lock (_eventLock)
        {
            if (_final is not null)
            {
                return;
            }

            if (stop.Kind != StopKind.Stopped)
            {
                _final = stop;
            }

            _events.Enqueue((stop, thread));
            waiter = _waiter;
            if (waiter is null || !TryTakeLocked(out stop))
            {
                return;
            }

            _waiter = null;
        }

        Answer(waiter, stop);
    }

    /// <summary>Completes the control loop's wait with <paramref name="stop"/>: on the owner when answers run there.</summary>
    private void Answer(StopWaiter waiter, StopEvent stop)
    {
        if (AnswerOnOwner && _owner.IsCurrent)
        {
            // The core's answer runs on this thread, but only once the status at hand is fully handled.
            _answering = waiter;
            _answeringStop = stop;
            _owner.Defer(this);
            return;
        }

        waiter.TrySetResult(stop, inline: false);
    }

    /// <summary>
    /// Runs the core's answer to the stop <see cref="Deliver"/> handed over: its continuation, up to the next wait
    /// that has to block (handle the stop, step over, resume). Owner only, between statuses.
    /// </summary>
    void IDeferredCompletion.Complete()
    {
        var waiter = _answering!;
        _answering = null;
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        waiter.TrySetResult(_answeringStop, inline: true);
        var elapsed = System.Diagnostics.Stopwatch.GetTimestamp() - started;
        if (elapsed > SlowAnswerTicks && AnswerOnOwner)
        {
            AnswerOnOwner = false;
            Log.SlowAnswer(_logger, Pid, elapsed * 1000 / System.Diagnostics.Stopwatch.Frequency);
        }
    }

    private bool TryTakeLocked(out StopEvent stop)
    {
        if (_events.TryDequeue(out var entry))
        {
            if (entry.Thread is not null)
            {
                Interlocked.Decrement(ref entry.Thread.Undelivered);
            }

            _currentTid = entry.Event.ThreadId;
            _takenExecs = _execs;
            if (entry.Event.Reason == StopReason.StoppedByOthers)
            {
                _stops.Acknowledge();
            }

            stop = entry.Event;
            return true;
        }

        if (_final is { } final)
        {
            stop = final;
            return true;
        }

        stop = default;
        return false;
    }

    private void ThrowIfReadOnly()
    {
        if (Access == GrabAccess.ReadOnly)
        {
            throw new InvalidOperationException($"pid {Pid} was grabbed read-only: it is not traced");
        }
    }
}
