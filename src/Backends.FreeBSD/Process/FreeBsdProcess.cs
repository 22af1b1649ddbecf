using Microsoft.Extensions.Logging;
using ProcHex.Elf;
using ProcHex.Ports;
using static Interop;

namespace ProcHex.Backends.FreeBSD;

/// <summary>
/// One victim under FreeBSD ptrace. Stop reasons come from PT_LWPINFO (pl_flags, pl_siginfo), never from the wait
/// status alone: FreeBSD reports every debugging event as a SIGTRAP (or SIGSTOP) stop.
/// </summary>
/// <remarks>
/// How stops are told apart (sys/kern/sys_process.c, sys/kern/kern_sig.c):
/// <list type="bullet">
/// <item>SIGSTOP never carries siginfo (kern_sig.c sigqueue_add keeps none for SIGKILL/SIGSTOP): every SIGSTOP stop
/// shows si_code 0, si_pid 0, whoever sent it, and pending ones coalesce. So the attach stop is known by position
/// (the first stop after PT_ATTACH: issignal takes it first while P2_PTRACE_FSTP is set), and a SIGSTOP stop is ours
/// when one of ours is outstanding (at most one: they coalesce). A SIGCONT sent meanwhile deletes our pending SIGSTOP
/// (tdsendsignal, sigqueue_delete_stopmask_proc) and stops the traced victim itself, so a SIGCONT stop while ours
/// is outstanding stands in for it (and the SIGCONT is delivered on resume). Any other stop signal is someone
/// else's (S20).</item>
/// <item>A traced process ignores the default action of stop signals ("Traced or exiting processes should ignore
/// stops", issignal), so handing an external SIGSTOP back with PT_CONTINUE would just run it. The victim is
/// therefore kept in its trace stop. A SIGCONT sent to it then is only queued ("If traced process is already
/// stopped, then no further action is necessary", tdsendsignal: no P_CONTINUED, no WCONTINUED), and so is a SIGKILL.
/// Nothing wakes a waiter, so S20 reads the pending set (KERN_PROC_PID ki_siglist) with a backoff up to
/// <see cref="ParkedPollMax"/>; that poll is the one place the backend polls, because FreeBSD offers no event.</item>
/// <item>int3 leaves RIP one past the breakpoint (trap.c: si_addr = tf_rip); we write RIP back to the breakpoint
/// when the address is one of ours, so whatever runs next executes the original instruction.</item>
/// </list>
/// </remarks>
internal sealed class FreeBsdProcess : ITracedProcess
{
    /// <summary>
    /// exec completion, fork (the child arrives stopped so it can be cleaned and detached; we never follow it),
    /// vfork completion and LWP birth/exit. No syscall events: FreeBSD reports fork and exec directly.
    /// </summary>
    internal const PtraceEvents ControlEvents =
        PtraceEvents.PTRACE_EXEC | PtraceEvents.PTRACE_FORK | PtraceEvents.PTRACE_LWP | PtraceEvents.PTRACE_VFORK;

    private readonly IFreeBsdKernel _kernel;
    private readonly PtraceCalls _ptrace;
    private readonly VictimWaiter? _waiter;
    private readonly ILogger _logger;
    private readonly object _gate = new();
    private readonly int _tracerPid;
    private readonly Dictionary<ulong, BreakpointPatch> _planted = [];
    private readonly HashSet<ulong> _retired = [];
    private readonly VmMapSymbolTable _symbols;

    private bool _stopped;
    private bool _gone;
    private bool _released;
    private int _lastLwp;
    private int _pendingSignal;
    private BreakpointPatch? _stepOver;
    /// <summary>Transparent attach: the signal given to the first PT_CONTINUE/PT_DETACH is dropped, so it is sent with kill(2).</summary>
    private bool _firstResumeDropsSignal;

    /// <summary>An outside SIGCONT seen pending while parked (S20): it will show as a signal stop once resumed; deliver it then.</summary>
    private bool _queuedContinue;

    internal static readonly TimeSpan ParkedPollMin = TimeSpan.FromMilliseconds(10);
    internal static readonly TimeSpan ParkedPollMax = TimeSpan.FromMilliseconds(250);
    private bool _stopRequested;

    /// <summary>Our SIGSTOP was sent and its stop not seen yet: it must be drained before a detach, or it stops the victim.</summary>
    private bool _ourStopInFlight;

    /// <summary>RequestStop on a victim that is already stopped: the pending or next wait reports Interrupted.</summary>
    private bool _interruptPending;

    private TaskCompletionSource? _wake;
    private bool _awaitingExternalResume;
    private bool _vforkShared;
    private WaitResult? _stashed;

    /// <summary>Where <c>prochex.step_overs</c> is counted: the tracer's instruments.</summary>
    internal ProcHexMetrics Metrics { get; init; } = ProcHexMetrics.Shared;

    internal FreeBsdProcess(
        IFreeBsdKernel kernel, int pid, GrabAccess access, bool created, int lwp, bool transparentAttach, ILogger logger)
    {
        _kernel = kernel;
        _ptrace = new PtraceCalls(kernel);
        _logger = logger;
        _tracerPid = kernel.GetPid();
        Pid = pid;
        Access = access;
        Created = created;
        _lastLwp = lwp;
        _firstResumeDropsSignal = transparentAttach;
        _symbols = new VmMapSymbolTable(kernel, pid, new VictimMemory(this));
        StartTime = ProcessIdentity.StartTime(kernel, pid);
        if (access == GrabAccess.Control)
        {
            _stopped = true;
            _waiter = new VictimWaiter(kernel, pid);
        }
    }

    public int Pid { get; }

    public GrabAccess Access { get; }

    /// <summary>We spawned it: it stays our child after a detach, and kill-on-last-close applies.</summary>
    internal bool Created { get; }

    public ISymbolTable Symbols => _symbols;

    /// <summary>ki_start when this object was made: with the pid, the process's identity.</summary>
    public ulong? StartTime { get; }

    public bool WasReplaced() => ProcessIdentity.WasReplaced(_kernel, Pid, StartTime);

    /// <summary>The planted breakpoints, for tests.</summary>
    internal IReadOnlyCollection<ulong> PlantedAddresses
    {
        get
        {
            lock (_gate)
            {
                return [.. _planted.Keys];
            }
        }
    }

    public void BeginControl()
    {
        RequireControl();
        lock (_gate)
        {
            _ptrace.SetEventMask(Pid, ControlEvents);
        }
    }

    public async ValueTask<StopEvent> WaitForStopAsync(CancellationToken cancellationToken)
    {
        RequireControl();
        while (true)
        {
            WaitResult result;
            Task<WaitResult>? task = null;
            Task wake;
            lock (_gate)
            {
                if (_interruptPending)
                {
                    _interruptPending = false;
                    return StopEvent.Stopped(StopReason.Interrupted, _lastLwp);
                }

                if (_stashed is { } stashed)
                {
                    _stashed = null;
                    result = stashed;
                }
                else if (_awaitingExternalResume && _stopped)
                {
                    result = default;
                }
                else
                {
                    result = default;
                    task = _waiter!.NextAsync(0);
                }

                _wake = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wake = _wake.Task;
            }

            if (task is null && result == default)
            {
                // S20: nothing will be reported while we hold the victim in its trace stop; look at what is pending.
                if (await WaitParkedAsync(wake, cancellationToken) is { } parked)
                {
                    return parked;
                }

                continue;
            }

            if (task is not null)
            {
                // A stopped victim has nothing to report until someone else resumes it; RequestStop wakes us instead
                // (the waitpid stays pending and its status goes to the next wait).
                await Task.WhenAny(task, wake).WaitAsync(cancellationToken);
                if (!task.IsCompleted)
                {
                    continue;
                }

                result = await task;
                _waiter!.Consume(task);
            }

            StopEvent? stop;
            lock (_gate)
            {
                stop = Interpret(result);
            }

            if (stop is { } s)
            {
                return s;
            }
        }
    }

    /// <summary>What <see cref="WaitForStopAsync"/> would return at once: the same sources, without blocking.</summary>
    public StopEvent? TakeReadyStop()
    {
        RequireControl();
        lock (_gate)
        {
            if (_interruptPending)
            {
                _interruptPending = false;
                return StopEvent.Stopped(StopReason.Interrupted, _lastLwp);
            }

            while (true)
            {
                WaitResult result;
                if (_stashed is { } stashed)
                {
                    _stashed = null;
                    result = stashed;
                }
                else if (_awaitingExternalResume && _stopped)
                {
                    return CheckParked();
                }
                else if (!_waiter!.TryNext(0, out result))
                {
                    return null;
                }

                if (Interpret(result) is { } stop)
                {
                    return stop;
                }
            }
        }
    }

    public void Resume()
    {
        RequireControl();
        lock (_gate)
        {
            if (_gone || !_stopped)
            {
                return;
            }

            _awaitingExternalResume = false;
            if (_stepOver is { } patch)
            {
                _stepOver = null;
                if (!StepOverNow(patch))
                {
                    return;
                }
            }

            var signal = _pendingSignal;
            _pendingSignal = 0;
            ContinueLocked(signal);
        }
    }

    public void AwaitExternalResume()
    {
        RequireControl();
        lock (_gate)
        {
            // Stay in the trace stop (a traced process cannot sit in a job-control stop, see the class remarks)
            // and watch the pending set for somebody's SIGCONT.
            _awaitingExternalResume = true;
            _pendingSignal = 0;
        }
    }

    /// <summary>
    /// S20 while we hold the victim: sleep with a growing interval (never spinning), waking early for RequestStop or
    /// cancellation, until ki_siglist shows a SIGCONT (reported as ResumedByOthers) or a SIGKILL (which would wait for
    /// our resume forever: the victim is continued so it dies and the next wait reports the death).
    /// </summary>
    private async Task<StopEvent?> WaitParkedAsync(Task wake, CancellationToken cancellationToken)
    {
        var delay = ParkedPollMin;
        while (true)
        {
            lock (_gate)
            {
                if (_interruptPending || !_awaitingExternalResume || !_stopped)
                {
                    return null;
                }

                if (CheckParked() is { } stop)
                {
                    return stop;
                }

                if (!_stopped)
                {
                    return null;
                }
            }

            await Task.WhenAny(wake, Task.Delay(delay, cancellationToken)).WaitAsync(cancellationToken);
            if (wake.IsCompleted)
            {
                return null;
            }

            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, ParkedPollMax.Ticks));
        }
    }

    /// <summary>One look at the pending set of a parked victim (under the gate).</summary>
    private StopEvent? CheckParked()
    {
        var pending = PendingSignals();
        if (pending.Contains(Signals.SIGKILL))
        {
            // tdsendsignal left the SIGKILL queued because the victim is trace-stopped; let it act.
            _awaitingExternalResume = false;
            ContinueLocked(0);
            return null;
        }

        if (pending.Contains(Signals.SIGCONT))
        {
            _awaitingExternalResume = false;
            _queuedContinue = true;
            return StopEvent.Stopped(StopReason.ResumedByOthers, _lastLwp);
        }

        return null;
    }

    /// <summary>ki_siglist of KERN_PROC_PID: the signals pending for the whole process (kern_proc.c fill_kinfo_proc_only).</summary>
    private HashSet<int> PendingSignals()
    {
        var set = new HashSet<int>();
        if (ProcessIdentity.Kinfo(_kernel, Pid) is not { } kinfo || kinfo.Length < KinfoProc.SiglistOffset + 16)
        {
            return set;
        }

        for (var word = 0; word < 4; word++)
        {
            var bits = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(kinfo.AsSpan(KinfoProc.SiglistOffset + (4 * word)));
            for (var bit = 0; bit < 32; bit++)
            {
                if ((bits & (1u << bit)) != 0)
                {
                    set.Add((32 * word) + bit + 1);
                }
            }
        }

        return set;
    }

    public void RequestStop()
    {
        if (Access != GrabAccess.Control)
        {
            return;
        }

        lock (_gate)
        {
            if (_gone || _released)
            {
                return;
            }

            if (_stopped)
            {
                _interruptPending = true;
                _wake?.TrySetResult();
                return;
            }

            _stopRequested = true;
            if (!_ourStopInFlight)
            {
                // One outstanding SIGSTOP at most: a second would coalesce with the first into one stop.
                _ourStopInFlight = _kernel.Kill(Pid, Signals.SIGSTOP, out _) == 0;
            }
        }
    }

    public ulong ReadProgramCounter()
    {
        RequireControl();
        lock (_gate)
        {
            RequireStopped("read the program counter of");
            return (ulong)_ptrace.GetRegs(_lastLwp).r_rip;
        }
    }

    public X64Registers ReadRegisters(int threadId)
    {
        RequireControl();
        lock (_gate)
        {
            RequireStopped("read the registers of");
            return Registers.ToNeutral(_ptrace.GetRegs(threadId));
        }
    }

    public ulong ReadFirstArgument()
    {
        RequireControl();
        lock (_gate)
        {
            RequireStopped("read the registers of");
            return (ulong)_ptrace.GetRegs(_lastLwp).r_rdi;
        }
    }

    /// <summary>
    /// Not decoded on FreeBSD: its csu (<c>lib/csu/amd64/crt1_c.c</c>) has no <c>__libc_start_main</c> and passes
    /// main to <c>__libc_start1</c> as its fifth argument (r8), through <c>_start1</c>: a different shape from glibc's
    /// and musl's. A stripped FreeBSD executable stops at the closest rendezvous before main instead.
    /// </summary>
    public bool TryFindMainFromEntryCode(out ulong address)
    {
        address = 0;
        return false;
    }

    /// <summary>
    /// FreeBSD lists a process's LWPs and their registers through ptrace only while it is traced and stopped; a
    /// read-only or running victim would need sysctl KERN_PROC_INC_THREAD, not wired yet, so that is a clear error.
    /// </summary>
    public IReadOnlyList<ThreadSnapshot> ReadThreads()
    {
        if (Access != GrabAccess.Control)
        {
            throw new TracerException($"pid {Pid}: listing the threads of a read-only victim is not supported on FreeBSD yet", TracerErrorKind.Unsupported, Errno.ENOTSUP);
        }

        lock (_gate)
        {
            RequireStopped("list the threads of");
            return [.. _ptrace.LwpList(Pid).Select(lwp => new ThreadSnapshot(lwp, (ulong)_ptrace.GetRegs(lwp).r_rip))];
        }
    }

    public BreakpointPatch PlantBreakpoint(ulong address)
    {
        RequireControl();
        lock (_gate)
        {
            RequireStopped("plant a breakpoint in");
            if (_planted.TryGetValue(address, out var existing))
            {
                WriteTrap(address);
                return existing;
            }

            Span<byte> original = stackalloc byte[1];
            if (_ptrace.Io(Pid, PiodOp.PIOD_READ_I, address, original, out var errno) != 1)
            {
                throw new TracerException(
                    $"cannot read text at 0x{address:x} in pid {Pid}: {Errno.Describe(errno == 0 ? Errno.EFAULT : errno)}", Errno.KindOf(errno == 0 ? Errno.EFAULT : errno), errno);
            }

            WriteTrap(address);
            var patch = new BreakpointPatch(address, original[0], 1);
            _planted[address] = patch;
            _retired.Remove(address);
            return patch;
        }
    }

    public void RemoveBreakpoint(BreakpointPatch patch)
    {
        RequireControl();
        lock (_gate)
        {
            RequireStopped("remove a breakpoint from");
            if (!_planted.Remove(patch.Address))
            {
                // Planted before an exec: the new image never had it.
                return;
            }

            _ptrace.WriteAll(Pid, PiodOp.PIOD_WRITE_I, patch.Address, [(byte)patch.OriginalBytes]);
            _retired.Add(patch.Address);
        }
    }

    public void StepOverBreakpoint(BreakpointPatch patch)
    {
        RequireControl();
        lock (_gate)
        {
            RequireStopped("step over a breakpoint in");
            _stepOver = patch;
        }
    }

    public int ReadMemory(ulong address, Span<byte> destination)
    {
        if (Access != GrabAccess.Control)
        {
            return ReadUntraced(address, destination);
        }

        lock (_gate)
        {
            if (!_stopped && !_gone && !_released)
            {
                // PT_IO needs it stopped; a client reading a running victim (S21's locked reader) goes through procfs.
                return ReadUntraced(address, destination);
            }

            RequireStopped("read memory of");
            var done = _ptrace.Io(Pid, PiodOp.PIOD_READ_D, address, destination, out var errno);
            if (done == 0 && errno == Errno.ESRCH)
            {
                throw PtraceCalls.Failure("PT_IO read", Pid, errno);
            }

            return done;
        }
    }

    public void WriteMemory(ulong address, ReadOnlySpan<byte> source)
    {
        RequireControl();
        lock (_gate)
        {
            RequireStopped("write memory of");
            _ptrace.WriteAll(Pid, PiodOp.PIOD_WRITE_D, address, source);
        }
    }

    public IRtldAgent? OpenRtldAgent()
    {
        RequireControl();
        _symbols.Refresh();
        return FreeBsdRtldAgent.TryOpen(_kernel, Pid, _symbols, new VictimMemory(this), ReadProgramCounter);
    }

    public void Release(ReleaseMode mode)
    {
        lock (_gate)
        {
            if (_released)
            {
                return;
            }

            _released = true;
            if (Access != GrabAccess.Control)
            {
                return;
            }

            try
            {
                ReleaseLocked(mode);
            }
            finally
            {
                _waiter!.Dispose();
            }
        }
    }

    public void Dispose()
    {
        // A handle dropped without Release still honours kill-on-last-close (created) or run-on-last-close (grabbed).
        Release(Created ? ReleaseMode.Kill : ReleaseMode.Run);
    }

    private void ReleaseLocked(ReleaseMode mode)
    {
        if (_gone)
        {
            return;
        }

        if (!_stopped && !StopForRelease())
        {
            return;
        }

        if (mode != ReleaseMode.Kill && _ourStopInFlight && !DrainOurStop())
        {
            return;
        }

        // The core removes its breakpoints first (S16); anything still planted goes too, because a detached
        // victim that meets an int3 dies of SIGTRAP.
        RestorePlantedText();
        switch (mode)
        {
            case ReleaseMode.Kill:
                if (_ptrace.Raw(PtraceRequest.PT_KILL, Pid, 0, 0, out _) == -1)
                {
                    _ = _kernel.Kill(Pid, Signals.SIGKILL, out _);
                }

                ReapAfterKill();
                break;
            case ReleaseMode.Run:
                Detach(_pendingSignal);
                break;
            case ReleaseMode.Hang:
                // A SIGSTOP queued now stays queued (tdsendsignal does nothing more for a trace-stopped process) and
                // PT_DETACH removes no pending signal, so the untraced process takes it: a real job-control stop
                // until someone sends SIGCONT. Passing SIGSTOP to PT_DETACH instead would be dropped after a
                // transparent attach.
                _ = _kernel.Kill(Pid, Signals.SIGSTOP, out _);
                Detach(0);
                break;
        }

        _gone = true;
        Log.Released(_logger, Pid, mode.ToString());
    }

    private void RestorePlantedText()
    {
        foreach (var patch in _planted.Values)
        {
            if (_ptrace.Io(Pid, PiodOp.PIOD_WRITE_I, patch.Address, [(byte)patch.OriginalBytes], out var errno) != 1)
            {
                Log.ReleaseStepFailed(_logger, Pid, $"restoring 0x{patch.Address:x}", Errno.Describe(errno));
            }
        }

        _planted.Clear();
    }

    private void Detach(int signal)
    {
        signal = SignalForResume(signal);
        if (_ptrace.Raw(PtraceRequest.PT_DETACH, Pid, PtraceRequest.ResumeHere, signal, out var errno) == -1)
        {
            Log.ReleaseStepFailed(_logger, Pid, "PT_DETACH", Errno.Describe(errno));
        }
    }

    /// <summary>
    /// Waits for the death. A stop on the way (a SIGKILL sent with kill(2) to a running traced victim is reported as
    /// a signal stop first, and kills only once resumed) is answered with PT_KILL, so no wait blocks on it.
    /// </summary>
    private void ReapAfterKill()
    {
        for (var i = 0; i < 64; i++)
        {
            var r = _waiter!.Next(0);
            if (r.Result == -1 || Wait.IfExited(r.Status) || Wait.IfSignaled(r.Status))
            {
                return;
            }

            if (Wait.IfStopped(r.Status))
            {
                _ = _ptrace.Raw(PtraceRequest.PT_KILL, Pid, 0, 0, out _);
            }
        }
    }

    /// <summary>
    /// PT_DETACH, PT_IO and PT_KILL need a stopped victim (proc_can_ptrace answers EBUSY otherwise). Stop it with
    /// our own SIGSTOP and let every other stop that comes first go on, as libproc's proc_detach does.
    /// Returns false when the victim died meanwhile.
    /// </summary>
    private bool StopForRelease()
    {
        _stopRequested = true;
        if (!_ourStopInFlight && _kernel.Kill(Pid, Signals.SIGSTOP, out var errno) == -1 && errno == Errno.ESRCH)
        {
            _gone = true;
            return false;
        }

        _ourStopInFlight = true;
        for (var i = 0; i < 256; i++)
        {
            var r = _waiter!.Next(0);
            if (r.Result == -1 || !Wait.IfStopped(r.Status))
            {
                _gone = true;
                return false;
            }

            _stopped = true;
            var signal = Wait.StopSignal(r.Status);
            var info = _ptrace.LwpInfo(Pid);
            _lastLwp = info.pl_lwpid;
            var flags = info.Flags;
            if (IsOurStop(signal, info))
            {
                _stopRequested = false;
                _ourStopInFlight = false;
                _pendingSignal = signal == Signals.SIGCONT ? Signals.SIGCONT : 0;
                return true;
            }

            var deliver = 0;
            if ((flags & LwpFlags.PL_FLAG_FORKED) != 0)
            {
                DetachForkChild(info.pl_child_pid);
            }
            else if (signal == Signals.SIGTRAP && IsBreakpointTrap(info))
            {
                _ = RewindIfOurs(info.pl_lwpid);
            }
            else if (signal != Signals.SIGTRAP && !Signals.IsStopSignal(signal))
            {
                deliver = signal;
            }

            ContinueLocked(deliver);
        }

        return false;
    }

    /// <summary>
    /// Another stop beat our SIGSTOP, which is still queued: detached now, the victim would take it and stay stopped.
    /// Run it (with the text restored) until the SIGSTOP is taken. Returns false when the victim died meanwhile.
    /// </summary>
    private bool DrainOurStop()
    {
        RestorePlantedText();
        if (_stashed is not null)
        {
            // A stop the next wait was to report is already collected: the victim is still in it.
            _stashed = null;
        }

        ContinueLocked(0);
        return StopForRelease();
    }

    private StopEvent? Interpret(WaitResult result)
    {
        if (result.Result == -1)
        {
            _gone = true;
            _stopped = false;
            return StopEvent.Lost(Pid, $"pid {Pid} can no longer be waited for: {Errno.Describe(result.Errno)}");
        }

        var status = result.Status;
        if (Wait.IfContinued(status))
        {
            // Someone sent SIGCONT while we kept the victim in its trace stop: it is still stopped, for us.
            _awaitingExternalResume = false;
            return StopEvent.Stopped(StopReason.ResumedByOthers, _lastLwp);
        }

        if (Wait.IfExited(status))
        {
            _gone = true;
            _stopped = false;
            return StopEvent.Exited(Pid, ExitStatus.FromCode(Wait.ExitStatus(status)));
        }

        if (Wait.IfSignaled(status))
        {
            _gone = true;
            _stopped = false;
            return StopEvent.Exited(Pid, ExitStatus.FromSignal(Wait.TermSignal(status), Wait.CoreDumped(status)));
        }

        if (!Wait.IfStopped(status))
        {
            return null;
        }

        _stopped = true;
        _pendingSignal = 0;
        var signal = Wait.StopSignal(status);
        Interop.PtraceLwpInfo info;
        try
        {
            info = _ptrace.LwpInfo(Pid);
        }
        catch (TracerException e) when (e.IsGone)
        {
            _gone = true;
            return StopEvent.Lost(Pid, e.Message);
        }

        _lastLwp = info.pl_lwpid;
        var stop = Classify(signal, info);
        if (stop is not null)
        {
            _stopRequested = false;
        }

        return stop;
    }

    private StopEvent? Classify(int signal, Interop.PtraceLwpInfo info)
    {
        var lwp = info.pl_lwpid;
        var flags = info.Flags;
        if ((flags & LwpFlags.PL_FLAG_EXEC) != 0)
        {
            // A new image: the old text and its breakpoints are gone; never write to the new text here.
            _planted.Clear();
            _retired.Clear();
            _stepOver = null;
            _vforkShared = false;
            return StopEvent.Stopped(StopReason.ExecDone, lwp, Pc(lwp));
        }

        if ((flags & LwpFlags.PL_FLAG_FORKED) != 0)
        {
            var vfork = (flags & LwpFlags.PL_FLAG_VFORKED) != 0;
            DetachForkChild(info.pl_child_pid);
            if (vfork)
            {
                // Cleaning the vfork child cleaned our text too (shared memory) until PL_FLAG_VFORK_DONE.
                _vforkShared = true;
                return StopEvent.Stopped(StopReason.ForkStarting, lwp, Pc(lwp));
            }

            return StopEvent.Stopped(StopReason.ForkDone, lwp, Pc(lwp));
        }

        if ((flags & LwpFlags.PL_FLAG_VFORK_DONE) != 0)
        {
            _vforkShared = false;
            foreach (var address in _planted.Keys)
            {
                WriteTrap(address);
            }

            return StopEvent.Stopped(StopReason.VforkDone, lwp, Pc(lwp));
        }

        if ((flags & (LwpFlags.PL_FLAG_BORN | LwpFlags.PL_FLAG_EXITED)) != 0)
        {
            // Every LWP shares the text and is stopped with the process; nothing to do but go on.
            return Swallow((flags & LwpFlags.PL_FLAG_BORN) != 0 ? "lwp born" : "lwp exited");
        }

        var si = info.pl_siginfo;
        var hasSi = (flags & LwpFlags.PL_FLAG_SI) != 0;
        if (signal == Signals.SIGTRAP)
        {
            if (IsBreakpointTrap(info))
            {
                return RewindIfOurs(lwp) is { } address
                    ? StopEvent.Stopped(StopReason.Breakpoint, lwp, address)
                    : Deliver(Signals.SIGTRAP, lwp);
            }

            if (hasSi && si.si_code == SiCode.TRAP_TRACE)
            {
                return StopEvent.Stopped(StopReason.SingleStep, lwp, Pc(lwp));
            }

            if (!hasSi)
            {
                // An event stop we did not ask for (a bare syscall-exit report): nothing for the core.
                return Swallow("event stop without siginfo");
            }

            return Deliver(Signals.SIGTRAP, lwp);
        }

        if (signal == Signals.SIGCONT && _queuedContinue && !_ourStopInFlight)
        {
            // The outside SIGCONT of S20, queued while we held the victim: deliver it (a handler may want it).
            _queuedContinue = false;
            _pendingSignal = Signals.SIGCONT;
            ContinueLocked(Signals.SIGCONT);
            return null;
        }

        if (IsOurStop(signal, info))
        {
            _ourStopInFlight = false;
            _queuedContinue = false;
            var deliver = signal == Signals.SIGCONT ? Signals.SIGCONT : 0;
            if (_stopRequested)
            {
                _pendingSignal = deliver;
                return StopEvent.Stopped(StopReason.Interrupted, lwp, Pc(lwp));
            }

            Log.Swallowed(_logger, Pid, "our SIGSTOP after another stop won the race");
            ContinueLocked(deliver);
            return null;
        }

        if (Signals.IsStopSignal(signal))
        {
            return StopEvent.Stopped(StopReason.StoppedByOthers, lwp, Pc(lwp));
        }

        return Deliver(signal, lwp);
    }

    private StopEvent Deliver(int signal, int lwp)
    {
        _pendingSignal = signal;
        return StopEvent.Stopped(StopReason.Signal, lwp, Pc(lwp));
    }

    private StopEvent? Swallow(string what)
    {
        Log.Swallowed(_logger, Pid, what);
        ContinueLocked(0);
        return null;
    }

    /// <summary>
    /// Our outstanding SIGSTOP, or the SIGCONT that deleted it before it was taken (see the class remarks). A SIGSTOP
    /// carries no sender, so an outsider's SIGSTOP that coalesced with ours is indistinguishable from it.
    /// </summary>
    private bool IsOurStop(int signal, Interop.PtraceLwpInfo info) =>
        _ourStopInFlight
        && (signal == Signals.SIGSTOP
            || (signal == Signals.SIGCONT && (info.Flags & LwpFlags.PL_FLAG_SI) != 0 && info.pl_siginfo.si_pid != _tracerPid));

    private static bool IsBreakpointTrap(Interop.PtraceLwpInfo info) =>
        (info.Flags & LwpFlags.PL_FLAG_SI) != 0 && info.pl_siginfo.si_code == SiCode.TRAP_BRKPT;

    /// <summary>
    /// RIP is one past the int3. When the byte before it is (or was, until a removal this stop raced with) one of
    /// our breakpoints, move RIP back so the original instruction runs next; returns the breakpoint address.
    /// A program's own int3 is left alone and its SIGTRAP delivered.
    /// </summary>
    private ulong? RewindIfOurs(int lwp)
    {
        var regs = _ptrace.GetRegs(lwp);
        var address = TrapSiteFromPc((ulong)regs.r_rip);
        var ours = _planted.ContainsKey(address) || (_retired.Contains(address) && ReadByte(address) != Int3);
        if (!ours)
        {
            return null;
        }

        regs.r_rip = (long)address;
        _ptrace.SetRegs(lwp, regs);
        return address;
    }

    /// <summary>
    /// A fork child arrives traced and stopped (PTRACE_FORK, first stop SIGSTOP with PL_FLAG_CHILD) before it runs
    /// user code. It inherited our int3 bytes: put the original bytes back in its copy and let it go.
    /// </summary>
    private void DetachForkChild(int child)
    {
        if (child <= 0)
        {
            return;
        }

        int status;
        int r;
        int errno;
        do
        {
            r = _kernel.WaitPid(child, out status, 0, out errno);
        }
        while (r == -1 && errno == Errno.EINTR);

        if (r == -1 || !Wait.IfStopped(status))
        {
            return;
        }

        foreach (var patch in _planted.Values)
        {
            _ = _ptrace.Io(child, PiodOp.PIOD_WRITE_I, patch.Address, [(byte)patch.OriginalBytes], out _);
        }

        _ = _ptrace.Raw(PtraceRequest.PT_DETACH, child, PtraceRequest.ResumeHere, 0, out _);
        Log.ForkChildDetached(_logger, Pid, child, _planted.Count);
    }

    /// <summary>
    /// Executes the original instruction once for the reporting LWP. Emulated when it can be (StepOver); otherwise the
    /// other LWPs are held with PT_SUSPEND, the original byte goes back, PT_STEP runs one instruction and the int3
    /// returns before anyone else runs. Returns false when the step ended in something other than its trace trap;
    /// that status is kept for the next wait, and the caller must not continue.
    /// </summary>
    private bool StepOverNow(BreakpointPatch patch)
    {
        var lwp = _lastLwp;
        Span<byte> text = stackalloc byte[16];
        var read = _ptrace.Io(Pid, PiodOp.PIOD_READ_I, patch.Address, text, out _);
        if (read > 0)
        {
            text[0] = (byte)patch.OriginalBytes;
            if (StepOver.TryEmulate(_ptrace, Pid, lwp, text[..read]))
            {
                Metrics.RecordStepOver(StepOverKind.Emulated);
                return true;
            }
        }

        Metrics.RecordStepOver(StepOverKind.OutOfLine);

        var others = _ptrace.LwpList(Pid).Where(t => t != lwp).ToArray();
        foreach (var other in others)
        {
            _ptrace.Check(PtraceRequest.PT_SUSPEND, other, 0, 0, "PT_SUSPEND");
        }

        _ptrace.WriteAll(Pid, PiodOp.PIOD_WRITE_I, patch.Address, [(byte)patch.OriginalBytes]);
        _firstResumeDropsSignal = false;
        _ptrace.Check(PtraceRequest.PT_STEP, lwp, PtraceRequest.ResumeHere, 0, "PT_STEP");
        _stopped = false;
        var r = _waiter!.Next(0);
        var steppedCleanly = false;
        if (r.Result != -1 && Wait.IfStopped(r.Status))
        {
            _stopped = true;
            if (_planted.ContainsKey(patch.Address) && !_vforkShared)
            {
                WriteTrap(patch.Address);
            }

            foreach (var other in others)
            {
                _ = _ptrace.Raw(PtraceRequest.PT_RESUME, other, 0, 0, out _);
            }

            var info = _ptrace.LwpInfo(Pid);
            steppedCleanly = Wait.StopSignal(r.Status) == Signals.SIGTRAP
                && info.pl_lwpid == lwp
                && (info.Flags & LwpFlags.PL_FLAG_SI) != 0
                && info.pl_siginfo.si_code == SiCode.TRAP_TRACE;
        }

        if (!steppedCleanly)
        {
            _stashed = r;
        }

        return steppedCleanly;
    }

    /// <summary>
    /// After a transparent attach the first PT_CONTINUE/PT_DETACH drops its signal; queue it with kill(2) instead, so it
    /// is taken (as a signal stop again while traced, or its default action once detached).
    /// </summary>
    private int SignalForResume(int signal)
    {
        if (_firstResumeDropsSignal)
        {
            _firstResumeDropsSignal = false;
            if (signal != 0)
            {
                _ = _kernel.Kill(Pid, signal, out _);
                return 0;
            }
        }

        return signal;
    }

    private void ContinueLocked(int signal)
    {
        signal = SignalForResume(signal);
        _ptrace.Check(PtraceRequest.PT_CONTINUE, Pid, PtraceRequest.ResumeHere, signal, "PT_CONTINUE");
        _stopped = false;
    }

    private void WriteTrap(ulong address)
    {
        if (!_vforkShared)
        {
            _ptrace.WriteAll(Pid, PiodOp.PIOD_WRITE_I, address, [Int3]);
        }
    }

    private byte ReadByte(ulong address)
    {
        Span<byte> b = stackalloc byte[1];
        return _ptrace.Io(Pid, PiodOp.PIOD_READ_I, address, b, out _) == 1 ? b[0] : (byte)0;
    }

    private ulong Pc(int lwp)
    {
        try
        {
            return (ulong)_ptrace.GetRegs(lwp).r_rip;
        }
        catch (TracerException)
        {
            return 0;
        }
    }

    /// <summary>
    /// A read-only grab is not traced, so PT_IO is refused; procfs's mem file is the way in. Without procfs mounted
    /// (the FreeBSD default) memory cannot be read: say so rather than return nothing.
    /// </summary>
    private int ReadUntraced(ulong address, Span<byte> destination)
    {
        var done = _kernel.ReadProcMem(Pid, address, destination, out var errno);
        if (done >= 0)
        {
            return done;
        }

        throw new TracerException(
            $"cannot read memory of pid {Pid}: PT_IO needs it traced and stopped, and /proc/{Pid}/mem cannot be read " +
            $"({Errno.Describe(errno)}); mount procfs (mount -t procfs proc /proc) or grab it for control", Errno.KindOf(errno), errno);
    }

    /// <summary>Victim memory for the ELF reader: a failed read is a short read, not an exception.</summary>
    private sealed class VictimMemory(FreeBsdProcess process) : IVictimMemory
    {
        public int Read(ulong address, Span<byte> destination)
        {
            try
            {
                return process.ReadMemory(address, destination);
            }
            catch (TracerException)
            {
                return 0;
            }
        }
    }

    private void RequireControl()
    {
        if (Access != GrabAccess.Control)
        {
            throw new InvalidOperationException($"pid {Pid} was grabbed read-only: it is not traced.");
        }
    }

    private void RequireStopped(string what)
    {
        if (_gone || _released)
        {
            throw new TracerException($"cannot {what} pid {Pid}: it is gone", TracerErrorKind.Gone, Errno.ESRCH);
        }

        if (!_stopped)
        {
            throw new TracerException(
                $"cannot {what} pid {Pid}: it is running, and FreeBSD's ptrace needs it stopped", TracerErrorKind.Busy, Errno.EBUSY);
        }
    }
}
