using static Interop;

namespace ProcHex.Backends.FreeBSD.Tests.FakeKernel;

/// <summary>What a fake program does when it runs, one step at a time, in order.</summary>
public abstract record FakeStep(int Thread = 0);

/// <summary>
/// Thread <paramref name="Thread"/> executes the instruction at <paramref name="Address"/> (a call into a traced
/// function). When it completes, the 8-byte <paramref name="Counter"/> (0: none) is incremented, as work() does. When it
/// starts, <paramref name="Arguments"/> (if given) go to rdi, rsi, rdx, rcx, r8, r9 and <paramref name="ReturnAddress"/>
/// (if not 0) to the top of the stack, where rsp points, as a call would leave them.
/// </summary>
public sealed record Call(ulong Address, int Thread = 0, ulong Counter = 0, IReadOnlyList<ulong>? Arguments = null, ulong ReturnAddress = 0)
    : FakeStep(Thread);

/// <summary>Runs <paramref name="Body"/> forever (a sleeper's loop).</summary>
public sealed record Repeat(IReadOnlyList<FakeStep> Body) : FakeStep(0);

/// <summary>The program stores a 4-byte value (rtld setting r_debug.r_state).</summary>
public sealed record Store(ulong Address, int Value) : FakeStep(0);

/// <summary>rtld maps a library (dlopen).</summary>
public sealed record MapLibrary(FakeLibrary Library) : FakeStep(0);

/// <summary>rtld unmaps a library (dlclose).</summary>
public sealed record UnmapLibrary(string Path) : FakeStep(0);

public sealed record SpawnThread(int NewThread) : FakeStep(0);

public sealed record EndThread(int Ending) : FakeStep(Ending);

public sealed record Fork(IReadOnlyList<FakeStep> ChildSteps, bool Vfork = false) : FakeStep(0);

public sealed record Exec(string Path, IReadOnlyList<string>? Argv = null) : FakeStep(0);

public sealed record Exit(int Code) : FakeStep(0);

/// <summary>The process sends itself a signal (raise): SIGSTOP for a self-stop, SIGSEGV for a crash.</summary>
public sealed record Raise(int Signal) : FakeStep(0);

/// <summary>Runs forever (a sleeper): only a signal moves it on.</summary>
public sealed record Block() : FakeStep(0);

/// <summary>
/// usleep/nanosleep for <paramref name="Duration"/>: kern_time.c kern_nanosleep sleeps in tsleep_sbt
/// (sleepq_timedwait), off the CPU. The process is blocked until the time is up; a pending signal is still taken
/// at once (tdsigwakeup aborts the interruptible sleep with sleepq_abort, and issignal/ptracestop run first).
/// </summary>
public sealed record Sleep(TimeSpan Duration) : FakeStep(0);

/// <summary>The start-up shell's <c>exec "$0" "$@"</c>.</summary>
internal sealed record ExecArgv0() : FakeStep(0);

/// <summary>A file mapping: bytes at an address, the file offset they come from, KVME_PROT_* bits.</summary>
public sealed record FakeSegment(ulong Address, byte[] Bytes, ulong FileOffset, int Protection)
{
    public ulong End => Address + (ulong)Bytes.Length;

    public bool IsText => (Protection & Kvme.KVME_PROT_EXEC) != 0;
}

/// <summary>A shared object as mapped in a process (the dynamic linker, libc, a dlopen'd library).</summary>
public sealed record FakeLibrary(string Path, IReadOnlyList<FakeSegment> Segments);

/// <summary>A program file: its segments, a script, and the libraries mapped with it at exec.</summary>
public sealed class FakeImage
{
    public required string Path { get; init; }

    public bool Executable { get; init; } = true;

    /// <summary>Synthetic images: one read-execute segment of <see cref="Text"/> at <see cref="TextBase"/>.</summary>
    public ulong TextBase { get; init; } = 0x400000;

    public byte[] Text { get; init; } = [];

    /// <summary>Images read from an ELF file give their PT_LOAD segments; synthetic ones get one from <see cref="Text"/>.</summary>
    public IReadOnlyList<FakeSegment> Segments
    {
        get => field ?? (Text.Length > 0 ? [new FakeSegment(TextBase, Text, 0, Kvme.KVME_PROT_READ | Kvme.KVME_PROT_EXEC)] : []);
        init;
    }

    public ulong Entry { get; init; } = 0x400000;

    /// <summary>The ABI it runs under, ki_emul ("FreeBSD ELF32" for an i386 program under COMPAT_FREEBSD32).</summary>
    public string Emulation { get; init; } = "FreeBSD ELF64";

    public IReadOnlyList<FakeStep> Steps { get; init; } = [new Exit(0)];

    /// <summary>When set, the script depends on argv (argv[0] first) and replaces <see cref="Steps"/>.</summary>
    public Func<IReadOnlyList<string>, IReadOnlyList<FakeStep>>? Script { get; init; }

    public IReadOnlyList<FakeStep> StepsFor(IReadOnlyList<string> argv) => Script?.Invoke(argv) ?? Steps;

    /// <summary>Mapped at exec, in this order; the first is the dynamic linker when <see cref="RtldBase"/> is not 0.</summary>
    public IReadOnlyList<FakeLibrary> Libraries { get; init; } = [];

    /// <summary>AT_BASE in the auxiliary vector: where the dynamic linker is mapped (0: statically linked).</summary>
    public ulong RtldBase { get; init; }

    /// <summary>
    /// Bytes of stack mapped below the stack pointer the fake reports (filled with 0xEE, so a store shows). 0, the
    /// default: none, so an emulated store below rsp faults and the tracer falls back to a step.
    /// </summary>
    public int StackBelowTop { get; init; }
}

/// <summary>Sparse byte memory; a vfork child shares its parent's instance.</summary>
public sealed class FakeMemory
{
    private readonly SortedDictionary<ulong, byte[]> _regions = [];

    public void Map(ulong start, byte[] bytes) => _regions[start] = bytes;

    public void Unmap(ulong start) => _regions.Remove(start);

    public FakeMemory Clone()
    {
        var copy = new FakeMemory();
        foreach (var (start, bytes) in _regions)
        {
            copy._regions[start] = (byte[])bytes.Clone();
        }

        return copy;
    }

    private (byte[] Bytes, int Index)? Locate(ulong address)
    {
        foreach (var (start, bytes) in _regions)
        {
            if (address >= start && address < start + (ulong)bytes.Length)
            {
                return (bytes, (int)(address - start));
            }
        }

        return null;
    }

    public bool TryRead(ulong address, out byte value)
    {
        if (Locate(address) is { } at)
        {
            value = at.Bytes[at.Index];
            return true;
        }

        value = 0;
        return false;
    }

    public bool TryWrite(ulong address, byte value)
    {
        if (Locate(address) is { } at)
        {
            at.Bytes[at.Index] = value;
            return true;
        }

        return false;
    }

    public byte[] Read(ulong address, int length)
    {
        var result = new byte[length];
        for (var i = 0; i < length; i++)
        {
            _ = TryRead(address + (ulong)i, out result[i]);
        }

        return result;
    }
}

/// <summary>The two PT_ATTACH behaviours the FreeBSD suite runs under.</summary>
public enum FakeAttach
{
    /// <summary>FreeBSD 14: PT_ATTACH queues a SIGSTOP (kern_psignal) and the first stop is that signal's.</summary>
    Classic,

    /// <summary>
    /// debug.ptrace_attach_transparent (FreeBSD main): the process stops for the tracer without a SIGSTOP; the attach
    /// stop has no PL_FLAG_SI and the signal of the first PT_CONTINUE/PT_DETACH is dropped.
    /// </summary>
    Transparent,
}

/// <summary>Signal numbers the adapter does not need, sys/sys/signal.h.</summary>
internal static class FakeSignals
{
    public const int SIGHUP = 1;
    public const int SIGUSR1 = 30;
    public const int SIGURG = 16;
    public const int SIGIO = 23;
    public const int SIGWINCH = 28;
    public const int SIGINFO = 29;
}

public enum FakeState
{
    Running,
    JobStopped,
    TraceStopped,
    Zombie,
}

public sealed class FakeThread
{
    public required int Lwp { get; init; }

    public ulong Rip { get; set; }

    /// <summary>rdi, rsi, rdx, rcx, r8, r9 as the last <see cref="Call"/> with arguments set them.</summary>
    public ulong[] Arguments { get; set; } = new ulong[6];

    public bool Suspended { get; set; }

    internal bool AtCall { get; set; }

    internal bool Trapped { get; set; }

    /// <summary>The tracer wrote RIP (PT_SETREGS) since the last trap: a rewind or an emulation, not a mistake.</summary>
    internal bool RipWritten { get; set; }

    /// <summary>Every register set the tracer wrote with PT_SETREGS, in order (the fake keeps only RIP for itself).</summary>
    internal List<Reg> RegistersSet { get; } = [];
}

/// <summary>A trace stop the fake reports: the wait status and what PT_LWPINFO returns for it.</summary>
internal sealed record FakeReport(int Status, int Lwp, int Event, int Flags, int Signal, int SiCode, int SiPid, ulong SiAddr, int ChildPid);

public sealed class FakeProcess
{
    public required int Pid { get; init; }

    public int Parent { get; set; }

    public int OriginalParent { get; set; }

    public bool Traced { get; set; }

    public bool Protected { get; set; }

    public int EventMask { get; set; }

    public FakeState State { get; set; }

    public required FakeMemory Memory { get; set; }

    /// <summary>The bytes as the files have them, never written: what an emulated or stepped instruction really is.</summary>
    public required FakeMemory Pristine { get; set; }

    /// <summary>The file mappings, as KERN_PROC_VMMAP lists them.</summary>
    public List<(FakeSegment Segment, string Path)> Mappings { get; set; } = [];

    public List<FakeThread> Threads { get; } = [];

    public string ImagePath { get; set; } = "";

    /// <summary>ki_start in microseconds: distinct for every process the kernel makes, so a reused pid shows.</summary>
    public ulong StartTime { get; init; }

    public FakeImage? Image { get; set; }

    public IReadOnlyList<string> Argv { get; set; } = [];

    public IReadOnlyList<string> Environment { get; set; } = [];

    public int WaitStatus { get; set; }

    public bool ContinuedFlag { get; set; }

    public Dictionary<ulong, int> Executed { get; } = [];

    internal List<FakeStep> Steps { get; set; } = [];

    internal int NextStep { get; set; }

    internal FakeReport? Report { get; set; }

    internal bool Waited { get; set; }

    internal int XThread { get; set; }

    /// <summary>
    /// sq_kill of the process signal queue: SIGKILL and SIGSTOP pending without siginfo (kern_sig.c sigqueue_add,
    /// "SIGKILL/SIGSTOP cannot be caught or masked, so take the fast path"). A set: a second SIGSTOP coalesces.
    /// </summary>
    internal SortedSet<int> KillSet { get; } = [];

    /// <summary>The ksiginfo list (sq_list) for every other signal, each with its si_code and si_pid.</summary>
    internal List<(int Signal, int Code, int From)> Queued { get; } = [];

    /// <summary>P2_PTRACE_FSTP (sys_process.c proc_set_traced): issignal takes the attach SIGSTOP before anything else.</summary>
    internal bool AttachStopFirst { get; set; }

    /// <summary>Transparent attach: the attach stop is still to be reported (no SIGSTOP is queued for it).</summary>
    internal bool TransparentStopPending { get; set; }

    /// <summary>Transparent attach: the signal given to the first PT_CONTINUE/PT_DETACH after the attach stop is dropped.</summary>
    internal bool DropNextResumeSignal { get; set; }

    /// <summary>A SIGKILL was sent while traced: the process dies at its next resume, whatever signal the tracer passes.</summary>
    internal bool KillPending { get; set; }

    /// <summary>ki_siglist as KERN_PROC_PID reports it (p_siglist): every signal pending for the process.</summary>
    internal IEnumerable<int> PendingSet => KillSet.Concat(Queued.Select(q => q.Signal)).Distinct();

    /// <summary>The end of the <see cref="Sleep"/> the process is in (tsleep_sbt's timeout), or null when not asleep.</summary>
    internal DateTime? WakeAt { get; set; }

    internal int VforkChild { get; set; }

    internal int VforkParent { get; set; }

    internal bool VforkDonePending { get; set; }

    internal int NextThreadLwp { get; set; }

    public int ExecutedAt(ulong address) => Executed.GetValueOrDefault(address);
}
