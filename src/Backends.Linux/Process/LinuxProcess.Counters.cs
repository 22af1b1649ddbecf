using ProcHex.Backends.Linux.InVictim;
using ProcHex.Backends.Linux.Symbols;
using ProcHex.Ports;
using static ProcHex.Backends.Linux.InVictim.VictimSyscalls;

namespace ProcHex.Backends.Linux;

/// <summary>
/// In-victim counters (issue 18, zero-stop.md): installed and removed as transactions, each in one stop of every
/// thread. Install writes a trampoline into an arena near the function, then the entry's jump to it, and moves a thread
/// stopped inside the displaced bytes to the same instruction of the copy; removal writes the entry's bytes back and
/// moves a thread inside a trampoline to the same place in the original text. No thread runs while the text changes,
/// and a thread re-enters user mode only after our writes (ptrace stops need no cross-modifying-code care).
/// Owner work, marshalled like every port call.
/// </summary>
internal sealed partial class LinuxProcess
{
    /// <summary>How much of a function is read for its analysis when its size is unknown: every branch in it is checked.</summary>
    private const int UnsizedFunctionBytes = 256;

    /// <summary>The most of a function read for its analysis.</summary>
    private const int MaxFunctionBytes = 64 * 1024;

    /// <summary>How much of each thread's stack, from its stack pointer up, is searched for a signal frame's saved PC.</summary>
    private const int StackScanBytes = 64 * 1024;

    private readonly CounterTable _counters = new();

    public IReadOnlyList<CounterPlacement> InstallCounters(IReadOnlyList<CounterSite> sites)
    {
        ThrowIfReadOnly();
        return sites.Count == 0 ? [] : _owner.Invoke(() => InstallOnOwner(sites));
    }

    public void RemoveCounters(IReadOnlyList<ISharedCounter> counters)
    {
        ThrowIfReadOnly();
        var ours = new List<SharedCounter>(counters.Count);
        foreach (var counter in counters)
        {
            ours.Add(counter as SharedCounter ?? throw new ArgumentException($"0x{counter.Entry:x}: not a counter of pid {Pid}", nameof(counters)));
        }

        if (ours.Count > 0)
        {
            _owner.Invoke(() => RemoveOnOwner(ours));
        }
    }

    private CounterPlacement[] InstallOnOwner(IReadOnlyList<CounterSite> sites)
    {
        ThrowIfNotControlled("install counters");
        return WithEveryThreadStopped(install: true, () =>
        {
            ThrowIfNotControlled("install counters");
            return PlaceAll(sites);
        });
    }

    private CounterPlacement[] PlaceAll(IReadOnlyList<CounterSite> sites)
    {
        var threads = StoppedThreadRegisters();
        var stackWords = StackWords(threads);
        var placements = new CounterPlacement[sites.Count];
        string? noArena = null;
        for (var i = 0; i < sites.Count; i++)
        {
            placements[i] = Place(sites[i], threads, stackWords, ref noArena);
        }

        WriteMovedThreads(threads);
        return placements;
    }

    private CounterPlacement Place(CounterSite site, List<ThreadPosition> threads, HashSet<ulong> stackWords, ref string? noArena)
    {
        if (_counters.At(site.Entry) is { } existing)
        {
            return new CounterPlacement(site, existing, null);
        }

        var code = ReadFunction(site);
        if (code.Length == 0)
        {
            return CounterPlacement.Refused(site, $"0x{site.Entry:x}: the text cannot be read");
        }

        var arena = _counters.ArenaFor(site.Entry);
        if (arena is null && noArena is null)
        {
            arena = TryCreateArena(site.Entry, out noArena);
        }

        if (arena is null)
        {
            return CounterPlacement.Refused(site, noArena!);
        }

        var build = CounterTrampoline.Build(site.Entry, code, site.FunctionLength, arena.NextCode, arena.NextCounter);
        if (build.Trampoline is not { } trampoline)
        {
            return CounterPlacement.Refused(site, build.Refusal!.Detail);
        }

        if (Conflict(trampoline, threads, stackWords) is { } conflict)
        {
            return CounterPlacement.Refused(site, conflict);
        }

        _memory.Write(arena.NextCode, trampoline.Code);
        _memory.Write(trampoline.Site.PatchAddress, trampoline.EntryJump());
        foreach (var thread in threads)
        {
            if (trampoline.IntoTrampoline(thread.Registers.rip) is { } moved)
            {
                thread.Registers.rip = moved;
                thread.Moved = true;
            }
        }

        var counter = arena.Take(trampoline);
        _counters.Add(counter);
        return new CounterPlacement(site, counter, null);
    }

    /// <summary>
    /// Why the jump cannot go in now: a trap of ours or another counter in its bytes, a thread between instructions
    /// there, or a stack holding the address of an instruction inside them (see <see cref="StackWords"/>).
    /// </summary>
    private string? Conflict(CounterTrampoline trampoline, List<ThreadPosition> threads, HashSet<ulong> stackWords)
    {
        var site = trampoline.Site;
        for (var address = site.Entry; address < site.ResumeAddress; address++)
        {
            if (_traps.Contains(address))
            {
                return $"0x{site.Entry:x}: a breakpoint is planted at 0x{address:x}, in the bytes the jump would replace";
            }
        }

        if (_counters.Overlapping(site.Entry, site.ResumeAddress) is { } other)
        {
            return $"0x{site.Entry:x}: the jump of the counter at 0x{other.Entry:x} holds some of its bytes";
        }

        foreach (var thread in threads)
        {
            if (trampoline.IsInsideDisplaced(thread.Registers.rip) && trampoline.IntoTrampoline(thread.Registers.rip) is null)
            {
                return $"0x{site.Entry:x}: thread {thread.Tid} is stopped at 0x{thread.Registers.rip:x}, which is no instruction start of the bytes the jump would replace";
            }
        }

        foreach (var instruction in site.Instructions)
        {
            var pc = site.PatchAddress + (ulong)instruction.Original;
            if (instruction.Original > 0 && stackWords.Contains(pc))
            {
                return $"0x{site.Entry:x}: a thread may return to 0x{pc:x}, inside the bytes the jump would replace, from a signal handler (a stack holds that address); try again once the handler returned";
            }
        }

        if (trampoline.Code.Length > CounterArena.SlotBytes)
        {
            return $"0x{site.Entry:x}: its trampoline takes {trampoline.Code.Length} bytes, more than a slot's {CounterArena.SlotBytes}";
        }

        return null;
    }

    private void RemoveOnOwner(List<SharedCounter> counters)
    {
        var live = counters.Where(c => c.Live).ToList();
        if (live.Count == 0 || _dead || _lost || _released)
        {
            return;
        }

        _ = WithEveryThreadStopped(install: false, () =>
        {
            if (!_dead)
            {
                TakeOut(live);
            }

            return 0;
        });
    }

    /// <summary>
    /// Runs <paramref name="transaction"/> with every thread stopped, then lets run again every thread but those that
    /// were stopped before (threads born meanwhile run too), unless the victim was held already (created, grabbed, stopped for the core): then the core's next
    /// <see cref="Resume"/> does, as after an inferior call. So a transaction needs no stop of the core's: a counter is
    /// installed or removed while the victim runs, and it runs on.
    /// </summary>
    private T WithEveryThreadStopped<T>(bool install, Func<T> transaction)
    {
        var began = System.Diagnostics.Stopwatch.GetTimestamp();
        var wasHeld = _stops.Held;
        var stoppedBefore = _threads.Values.Where(t => !t.Running).Select(t => t.Tid).ToHashSet();
        _ = StopAll();
        try
        {
            return transaction();
        }
        finally
        {
            if (!wasHeld && !_dead && !_released && !_lost)
            {
                // What ran runs again, and so does a thread born meanwhile: the stop-all held it at its first stop,
                // and a thread that waits for it (pthread_join) would wait for good (thread churn test).
                _stops.CoreResumes();
                foreach (var thread in _threads.Values.ToList())
                {
                    if (!stoppedBefore.Contains(thread.Tid))
                    {
                        ResumeIfFree(thread);
                    }
                }
            }

            Metrics.RecordCountersStopped(install, System.Diagnostics.Stopwatch.GetElapsedTime(began));
        }
    }

    /// <summary>
    /// Writes the entries' bytes back where the jump still is, and moves threads out of the trampolines; every thread is
    /// stopped.
    /// </summary>
    private void TakeOut(List<SharedCounter> live)
    {
        var threads = StoppedThreadRegisters();
        foreach (var counter in live)
        {
            var trampoline = counter.Trampoline;
            counter.Live = false;
            if (!HoldsJump(Pid, trampoline))
            {
                continue; // its object was unloaded (dlclose), or something else rewrote the text: nothing of ours is there
            }

            _memory.Write(trampoline.Site.PatchAddress, trampoline.Site.Displaced);
            foreach (var thread in threads)
            {
                if (trampoline.OutOfTrampoline(thread.Registers.rip) is { } moved)
                {
                    thread.Registers.rip = moved;
                    thread.Moved = true;
                }
            }
        }

        WriteMovedThreads(threads);
    }

    /// <summary>Whether the text of <paramref name="pid"/> (the victim, or a fork child's copy) holds the trampoline's entry jump.</summary>
    private bool HoldsJump(int pid, CounterTrampoline trampoline)
    {
        var jump = trampoline.EntryJump();
        var text = new byte[jump.Length];
        return Kernel.ProcessVmReadv(pid, trampoline.Site.PatchAddress, text, out _) == text.Length && text.AsSpan().SequenceEqual(jump);
    }

    /// <summary>Release: every counter out of the text, so the victim runs on with its own code. Every thread is stopped.</summary>
    private void TakeCountersOut()
    {
        var live = _counters.Live.ToList();
        if (live.Count > 0 && !_dead && !_lost)
        {
            TakeOut(live);
        }
    }

    /// <summary>
    /// A fork child's copy of the text holds the jumps of our counters but none of the arenas (MADV_DONTFORK): each
    /// entry gets its bytes back before the child runs, wherever the child still holds the jump (a counter removed
    /// after the kernel copied the text included).
    /// </summary>
    private void RestoreCounterEntries(int child)
    {
        foreach (var counter in _counters.Counters)
        {
            var site = counter.Trampoline.Site;
            if (HoldsJump(child, counter.Trampoline))
            {
                try
                {
                    MemoryFile.WriteOnce(Kernel, child, site.PatchAddress, site.Displaced);
                }
                catch (TracerException e)
                {
                    Log.BestEffortFailed(_logger, child, $"restoring the entry at 0x{counter.Entry:x}", e.Message);
                }
            }
        }
    }

    /// <summary>Puts the displaced bytes of every live counter over <paramref name="text"/> (read at <paramref name="address"/>).</summary>
    private void OverlayCounterEntries(ulong address, Span<byte> text)
    {
        foreach (var counter in _counters.Live)
        {
            var site = counter.Trampoline.Site;
            for (var i = 0; i < site.Displaced.Length; i++)
            {
                var at = site.PatchAddress + (ulong)i;
                if (at >= address && at < address + (ulong)text.Length)
                {
                    text[(int)(at - address)] = site.Displaced[i];
                }
            }
        }
    }

    /// <summary>The function's text as it was before our traps, up to its size (or <see cref="UnsizedFunctionBytes"/>).</summary>
    private byte[] ReadFunction(CounterSite site)
    {
        var length = Math.Clamp(site.FunctionLength ?? UnsizedFunctionBytes, 1, MaxFunctionBytes);
        var text = new byte[length];
        var n = ReadWithVmReadv(site.Entry, text, out _);
        if (n <= 0)
        {
            return [];
        }

        _traps.Overlay(site.Entry, text.AsSpan(0, n));
        return text[..n];
    }

    /// <summary>
    /// Maps an arena within reach of <paramref name="entry"/>: a memfd for the counters (shared with the tracer) and
    /// private r-x memory for the code, both MADV_DONTFORK, placed in a gap of the maps with MAP_FIXED_NOREPLACE. Null
    /// with <paramref name="why"/> when the victim cannot: nothing of a failed attempt is left in it.
    /// </summary>
    private CounterArena? TryCreateArena(ulong entry, out string? why)
    {
        try
        {
            var arena = CreateArena(entry);
            why = null;
            return arena;
        }
        catch (InferiorCallException e) when (!_dead)
        {
            why = $"0x{entry:x}: no counter arena: {e.Message}";
            return null;
        }
    }

    private CounterArena CreateArena(ulong entry)
    {
        var spot = InjectionSpot();
        var fd = InjectSyscall(spot, "memfd_create", MemfdCreate, [SyscallScratch(spot), MfdCloexec], "prochex-counters\0"u8);
        Check(fd, "memfd_create");
        try
        {
            Check(InjectSyscall(spot, "ftruncate", Ftruncate, [(ulong)fd, CounterArena.CounterBytes]), "ftruncate");
            var start = MapNear(spot, entry, (ulong)fd);
            var mapping = Kernel.MapProcessFile(Pid, (int)fd, out var errno);
            if (mapping is null)
            {
                _ = InjectSyscall(spot, "munmap", Munmap, [start, CounterArena.TotalBytes]);
                throw Failed("the tracer cannot map the victim's counters", errno);
            }

            var arena = new CounterArena(start, mapping);
            _counters.AddArena(arena, mapping);
            return arena;
        }
        finally
        {
            _ = InjectSyscall(spot, "close", Close, [(ulong)fd]);
        }
    }

    /// <summary>Maps the code and the counters side by side in the first gap that takes them; their start.</summary>
    private ulong MapNear(ulong spot, ulong entry, ulong fd)
    {
        var maps = ProcMaps.ReadOrThrow(Kernel, Pid);
        var tried = 0;
        foreach (var start in ArenaPlacement.Candidates(maps, entry, CounterArena.TotalBytes))
        {
            if (++tried > 8)
            {
                break;
            }

            var code = InjectSyscall(spot, "mmap", Mmap, [start, CounterArena.CodeBytes, ProtRead | ProtExec, MapPrivate | MapAnonymous | MapFixedNoReplace, ulong.MaxValue, 0]);
            if ((ulong)code != start)
            {
                if (!IsError(code, out _))
                {
                    _ = InjectSyscall(spot, "munmap", Munmap, [(ulong)code, CounterArena.CodeBytes]); // a kernel older than 4.17 took it as a hint
                }

                continue;
            }

            var counters = start + CounterArena.CodeBytes;
            var shared = InjectSyscall(spot, "mmap", Mmap, [counters, CounterArena.CounterBytes, ProtRead | ProtWrite, MapShared | MapFixedNoReplace, fd, 0]);
            if ((ulong)shared != counters)
            {
                _ = InjectSyscall(spot, "munmap", Munmap, [start, CounterArena.CodeBytes]);
                if (!IsError(shared, out _))
                {
                    _ = InjectSyscall(spot, "munmap", Munmap, [(ulong)shared, CounterArena.CounterBytes]);
                }

                continue;
            }

            if (IsError(InjectSyscall(spot, "madvise", Madvise, [start, CounterArena.TotalBytes, MadvDontFork]), out var errno))
            {
                _ = InjectSyscall(spot, "munmap", Munmap, [start, CounterArena.TotalBytes]);
                throw Failed("madvise(MADV_DONTFORK) failed in the victim", errno);
            }

            return start;
        }

        throw new InferiorCallException($"no free gap of {CounterArena.TotalBytes / 1024} KiB within {ArenaPlacement.Reach >> 30} GiB of 0x{entry:x} took the arena", TracerErrorKind.Exhausted);
    }

    private static void Check(long result, string name)
    {
        if (IsError(result, out var errno))
        {
            throw Failed($"{name} failed in the victim", errno);
        }
    }

    /// <summary>What failed, said with the errno's text, kind and number.</summary>
    private static InferiorCallException Failed(string what, int errno) =>
        new($"{what} ({Interop.Sys.DescribeError(errno)})", Interop.Errno.KindOf(errno), errno);

    private void ThrowIfNotControlled(string what)
    {
        if (_dead || _released || _lost)
        {
            throw new TracerException($"pid {Pid}: cannot {what}: the process is no longer controlled", TracerErrorKind.Gone);
        }
    }

    /// <summary>
    /// Every aligned 8-byte word of the top <see cref="StackScanBytes"/> of each thread's stack. A thread that a signal
    /// interrupted keeps its PC in the signal frame on its stack (the kernel's rt_sigframe, on an alternate stack too, where
    /// its stack pointer then is) and returns there with sigreturn, which no move of ours reaches. An address inside
    /// displaced bytes is no return address (calls are never displaced), so such a word is a saved PC or a chance value;
    /// either way the site waits, which costs a fallback, never a wrong jump.
    /// </summary>
    private HashSet<ulong> StackWords(List<ThreadPosition> threads)
    {
        var words = new HashSet<ulong>();
        var stack = new byte[StackScanBytes];
        foreach (var thread in threads)
        {
            var n = ReadWithVmReadv(thread.Registers.rsp & ~7UL, stack, out _);
            for (var i = 0; i + 8 <= n; i += 8)
            {
                words.Add(System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(stack.AsSpan(i)));
            }
        }

        return words;
    }

    private List<ThreadPosition> StoppedThreadRegisters()
    {
        var positions = new List<ThreadPosition>(_threads.Count);
        foreach (var thread in _threads.Values)
        {
            if (!thread.Running)
            {
                positions.Add(new ThreadPosition(thread.Tid, GetRegs(thread.Tid)));
            }
        }

        return positions;
    }

    private void WriteMovedThreads(List<ThreadPosition> threads)
    {
        foreach (var thread in threads)
        {
            if (thread.Moved)
            {
                SetRegs(thread.Tid, thread.Registers);
            }
        }
    }

    /// <summary>A stopped thread's registers while a transaction may move its PC.</summary>
    private sealed class ThreadPosition(int tid, Interop.UserRegs registers)
    {
        public int Tid { get; } = tid;

        public Interop.UserRegs Registers = registers;

        public bool Moved { get; set; }
    }
}
