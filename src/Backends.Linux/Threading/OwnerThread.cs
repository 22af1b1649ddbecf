using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace ProcHex.Backends.Linux;

/// <summary>
/// The one thread that is the tracer, in the kernel's sense, of every victim of a <see cref="LinuxTracer"/>.
/// </summary>
/// <remarks>
/// <para><b>Who owns what.</b> Linux binds a tracee to the thread that attached it, and detaches (or, with
/// EXITKILL, kills) it when that thread exits. So a single dedicated, background, never-pooled thread spawns,
/// seizes, ptraces and waits for every victim, and lives as long as the process. Everything a ptrace call or a
/// wait touches is owned by it and needs no lock: the tid-to-victim map, the orphan stops, each victim's thread
/// table and planted-breakpoint map. Other threads reach it only through <see cref="Invoke{T}"/> (blocking,
/// for the short synchronous port calls) or <see cref="InvokeAsync{T}"/> (create, grab); a call made on the
/// owner itself runs inline, which is what lets the core call back into the port from continuations the owner
/// runs. The only state shared with other threads is the work queue (lock-free) and each victim's event queue
/// (guarded by that victim's own small event lock, never held across a ptrace call). Memory reads use
/// process_vm_readv and may run on any thread.</para>
/// <para><b>Through one seam.</b> Every call into the kernel (ptrace, waitpid, kill, /proc, the wake process below)
/// goes through the owner's <see cref="ILinuxKernel"/>, which the victims it holds use too: <see cref="LinuxKernel"/>
/// in production, a fake kernel in the deterministic simulation.</para>
/// <para><b>How it waits.</b> The owner blocks in <c>waitpid(-1, __WALL | __WNOTHREAD)</c>: one call covers
/// every victim (1,000 victims cost nothing extra) and, thanks to __WNOTHREAD, never touches the children the
/// host application starts with Process.Start (the runtime fails fast if anyone reaps those). To wake it for
/// new work, the owner keeps one extra tracee of its own, the <i>wake process</i> (<c>sleep infinity</c>, seized
/// with EXITKILL so it dies with us): any thread sends it SIGUSR1, the kernel turns that into a
/// signal-delivery-stop, the wait returns, the owner swallows the signal and drains the queue. Nothing polls
/// while the victims are quiet.
/// The alternatives were rejected: a pidfd only becomes readable when a process exits, never at a ptrace stop,
/// so poll() over pidfds cannot see breakpoints; signalfd and EINTR tricks need control of SIGCHLD or of
/// signal dispositions, which belong to the .NET runtime. The wake process also guarantees the wait never
/// fails with ECHILD when no victim is held.</para>
/// <para><b>Why it lingers before blocking.</b> A wake costs a whole ptrace stop of the wake process, and the
/// core answers almost every stop it is told about (step over the breakpoint, resume) within microseconds. So after
/// doing anything the owner keeps looking, for <see cref="Linger"/>, at its queue and at <c>waitpid(WNOHANG)</c>,
/// with the wake flag raised so callers do not signal; only then does it lower the flag and block. On a breakpoint
/// that is hit over and over this turns two wake-process stops per hit into none; an idle owner still sits in one
/// blocking wait.</para>
/// <para><b>The manual owner.</b> For the deterministic simulation (src/Backends.Linux.Simulation),
/// <see cref="Manual"/> makes an owner with no thread and no wake process: the thread that made it is the owner,
/// every call it makes runs inline, and the loop's body runs only when it calls <see cref="PumpUntilIdle"/>. Its
/// sub-waits block in the fake kernel's waitpid, which runs the simulated world until the report comes. The
/// production loop runs the same body (<c>RunReadyWork</c>), with the linger and the blocking wait around it.</para>
/// <para><b>Synchronous sub-waits.</b> A few operations (stop all threads, step over a breakpoint, collect a new
/// thread's or child's first stop, kill and reap) wait for one specific tid on the owner. While that tid has
/// nothing to report the owner waits for any tracee, and what the others report is kept as an <i>early status</i>,
/// dispatched before the owner waits again (or claimed by a sub-wait for that tid): blocking in
/// <c>waitpid(tid)</c> alone would deadlock on a dying group, whose leader the kernel reports only after we have
/// reaped every other traced thread. A status of a tid nobody knows yet (a new thread whose parent's clone event
/// is still unread) is kept as an orphan and claimed later.</para>
/// </remarks>
internal sealed partial class OwnerThread
{
    private static readonly object SharedLock = new();
    private static readonly Dictionary<ILinuxKernel, OwnerThread> SharedByKernel = [];

    private readonly ConcurrentQueue<Action> _work = new();
    private readonly Dictionary<int, ITraceeStatusSink> _byTid = [];
    private readonly Dictionary<int, int> _orphans = [];
    private readonly List<(int Tid, int Status)> _early = [];
    private readonly Queue<IDeferredCompletion> _deferred = new();
    private readonly Thread? _thread;
    private readonly int _ownerThreadId;
    private readonly ILogger _logger;
    private readonly ILinuxKernel _kernel;
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>How long the owner keeps looking for work after its last piece of work, before it blocks.</summary>
    private static readonly long Linger = System.Diagnostics.Stopwatch.Frequency / 10_000; // 100 µs

    /// <summary>Above this many traced threads the linger no longer polls waitpid(-1), whose cost grows with them.</summary>
    private const int PollingTraceeLimit = 64;
    private int _wakePid;
    private int _wakeSignalled;
    private long _waitReturns;

    public OwnerThread(ILinuxKernel kernel, ILogger? logger)
    {
        _kernel = kernel;
        _logger = logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        _thread = new Thread(Run) { IsBackground = true, Name = "ProcHex ptrace owner" };
        _ownerThreadId = _thread.ManagedThreadId;
        _thread.Start();
        _started.Task.GetAwaiter().GetResult();
    }

    /// <summary>The manual owner: no thread of its own; see <see cref="Manual"/>.</summary>
    private OwnerThread(ILinuxKernel kernel, ILogger? logger, bool manual)
    {
        _ = manual;
        _kernel = kernel;
        _logger = logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        _ownerThreadId = Environment.CurrentManagedThreadId;
        _started.SetResult();
    }

    /// <summary>
    /// An owner that starts no thread and no wake process, for the deterministic simulation: the calling thread is
    /// the owner (<see cref="IsCurrent"/>, so every <see cref="Invoke{T}"/> runs inline), and the owner loop's body
    /// runs only when that thread calls <see cref="PumpUntilIdle"/>. Its synchronous sub-waits call the kernel's
    /// blocking waitpid as usual, which a fake kernel answers by running its world until a report comes. So
    /// everything (victims, owner, core) runs on one thread, in an order the fake's seed alone decides.
    /// </summary>
    internal static OwnerThread Manual(ILinuxKernel kernel, ILogger? logger) => new(kernel, logger, manual: true);

    /// <summary>The process-wide owner: victims of every tracer in this process share it.</summary>
    public static OwnerThread Shared => GetShared(null);

    /// <summary>The process-wide owner; the first caller's logger is the one it logs to.</summary>
    public static OwnerThread GetShared(ILogger? logger) => GetShared(logger, LinuxKernel.Instance);

    /// <summary>
    /// The process-wide owner of victims seen through <paramref name="kernel"/> (one per proc root: issue 22 item 4);
    /// the first caller's logger is the one it logs to.
    /// </summary>
    public static OwnerThread GetShared(ILogger? logger, ILinuxKernel kernel)
    {
        lock (SharedLock)
        {
            if (!SharedByKernel.TryGetValue(kernel, out var owner))
            {
                SharedByKernel[kernel] = owner = new OwnerThread(kernel, logger);
            }

            return owner;
        }
    }

    public bool IsCurrent => Environment.CurrentManagedThreadId == _ownerThreadId;

    /// <summary>
    /// Stops a debug build (the tests) when <paramref name="caller"/>, a method documented "Owner only", runs on
    /// another thread: what it touches (the tid map, a victim's threads and traps) has no lock because only the owner
    /// touches it.
    /// </summary>
    [Conditional("DEBUG")]
    public void AssertCurrent([CallerMemberName] string caller = "") =>
        Debug.Assert(IsCurrent, $"{caller} runs on the ptrace owner thread only (called on thread {Environment.CurrentManagedThreadId})");

    /// <summary>The kernel this owner traces through: every victim it holds makes its calls here.</summary>
    public ILinuxKernel Kernel => _kernel;

    /// <summary>How many times a wait of the owner has returned: a victim that is waited for without polling adds none.</summary>
    public long WaitReturns => Interlocked.Read(ref _waitReturns);
}
