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
internal sealed partial class LinuxProcess : ITracedProcess, IVictimMemory, ITraceeStatusSink, IDeferredCompletion, StopByOthers.IThreadTable,
    ITrapText, IForkChildHooks, IReleaseHooks, IStepOverHooks<Interop.UserRegs>
{
    internal const int BaseOptions = PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK
        | PTRACE_O_TRACEVFORKDONE | PTRACE_O_TRACEEXEC | PTRACE_O_TRACESYSGOOD;

    private readonly OwnerThread _owner;
    private readonly ILogger _logger;
    private readonly bool _created;
    private readonly Dictionary<int, VictimThread> _threads = [];
    private readonly TrapTable _traps = new();
    private readonly ForkChildCleaner _forkChildren;
    private readonly StepOverPlanner<Interop.UserRegs> _stepOver;
    private readonly List<int> _vforkChildren = [];
    private readonly MemoryFile _memory;
    private readonly object _eventLock = new();
    private readonly StopMailbox<VictimThread?> _mailbox = new();
    private readonly Lazy<ISymbolTable> _symbols;
    private readonly Action _resumeOnOwner;
    private readonly Action _handOverQueuedStop;
    private readonly StopWaiter _stopWaiter = new();

    /// <summary>Where a wait that moves the control loop to the owner has an early answer run (see <see cref="StopWaiter.Begin"/>).</summary>
    private readonly Action<Action> _postToOwner;
    private readonly StopByOthers _stops;
    private StopWaiter? _waiter;
    private StopWaiter? _answering;
    private List<VictimThread>? _stopTargets = [];

    /// <summary>When the last <see cref="StopAll"/> sent its first interrupt (a Stopwatch timestamp): nothing it stopped was stopped before.</summary>
    private long _firstInterruptAt;
    private StopEvent _answeringStop;
    private TaskCompletionSource<LinuxProcess>? _seizing;
    private (int Thread, BreakpointPatch Patch)? _pendingStep;
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
        _forkChildren = new ForkChildCleaner(_traps, this);
        _stepOver = new StepOverPlanner<Interop.UserRegs>(pid, _traps, this, () => Metrics);
        _postToOwner = work => _owner.Post(work);
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
    internal bool EmulationEnabled
    {
        get => _stepOver.EmulationEnabled;
        set => _stepOver.EmulationEnabled = value;
    }

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
        _owner.AssertCurrent();
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

    /// <summary>PTRACE_GETREGS on the owner: the thread is one stopped for the stop being answered.</summary>
    public X64Registers ReadRegisters(int threadId)
    {
        ThrowIfReadOnly();
        return _owner.Invoke(() => Registers.ToNeutral(GetRegs(threadId)));
    }

    public ulong ReadFirstArgument(int threadId)
    {
        ThrowIfReadOnly();
        return _owner.Invoke(() => GetRegs(threadId).rdi);
    }

    public bool TryFindMainFromEntryCode(out ulong address) =>
        SymbolSource.TryFindMainFromEntryCode(Kernel, Pid, ReadOriginalText, out address);

    /// <summary>From /proc: any thread, read-only handle or not, is listed without a ptrace call or a stop.</summary>
    public IReadOnlyList<ThreadSnapshot> ReadThreads() => Kernel.ThreadSnapshots(Pid);

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
        _owner.AssertCurrent();
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

    private void ThrowIfReadOnly()
    {
        if (Access == GrabAccess.ReadOnly)
        {
            throw new InvalidOperationException($"pid {Pid} was grabbed read-only: it is not traced");
        }
    }
}
