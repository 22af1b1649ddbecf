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
internal sealed partial class FreeBsdProcess : ITracedProcess, ITrapText, IForkChildHooks, IReleaseHooks, IStepOverHooks<Interop.Reg>
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
    private readonly TrapTable _traps = new();
    private readonly ForkChildCleaner _forkChildren;
    private readonly StepOverPlanner<Interop.Reg> _stepOverPlanner;
    private readonly VmMapSymbolTable _symbols;

    private bool _stopped;
    private bool _gone;
    private bool _released;
    private int _lastLwp;
    private int _pendingSignal;
    private (int Lwp, BreakpointPatch Patch)? _stepOver;
    /// <summary>Transparent attach: the signal given to the first PT_CONTINUE/PT_DETACH is dropped, so it is sent with kill(2).</summary>
    private bool _firstResumeDropsSignal;

    /// <summary>An outside SIGCONT seen pending while parked (S20): it will show as a signal stop once resumed; deliver it then.</summary>
    private bool _queuedContinue;

    internal static readonly TimeSpan ParkedPollMin = TimeSpan.FromMilliseconds(10);
    internal static readonly TimeSpan ParkedPollMax = TimeSpan.FromMilliseconds(250);
    private bool _stopRequested;

    /// <summary>Our SIGSTOP was sent and its stop not seen yet: it must be drained before a detach, or it stops the victim.</summary>
    private bool _ourStopInFlight;

    /// <summary>Stops decided outside a wait: RequestStop on a victim that is already stopped posts Interrupted here.</summary>
    private readonly StopMailbox<int> _mailbox = new();

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
        _forkChildren = new ForkChildCleaner(_traps, this);
        _stepOverPlanner = new StepOverPlanner<Interop.Reg>(pid, _traps, this, () => Metrics);
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
                return [.. _traps.Addresses];
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

    /// <summary>The PC of the LWP that reported the last stop (the dynamic linker agent's view of where the process stands).</summary>
    private ulong ReadProgramCounter()
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

    public ulong ReadFirstArgument(int threadId)
    {
        RequireControl();
        lock (_gate)
        {
            RequireStopped("read the registers of");
            return (ulong)_ptrace.GetRegs(threadId).r_rdi;
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
