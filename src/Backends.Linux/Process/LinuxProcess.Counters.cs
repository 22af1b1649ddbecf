using ProcHex.Backends.Linux.InVictim;
using ProcHex.Backends.Linux.Symbols;
using ProcHex.Ports;

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

    /// <summary>The largest executable mapping swept for branch targets (libc's text is about 1.5 MiB).</summary>
    private const int MaxSweptCode = 256 * 1024 * 1024;

    /// <summary>How much of each thread's stack, from its stack pointer up, is searched for a signal frame's saved PC.</summary>
    private const int StackScanBytes = 64 * 1024;

    /// <summary>Text writes at most this far apart go as one (see <see cref="WriteText"/>); less than a page.</summary>
    private const ulong CoalescedGap = 512;

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

    /// <summary>
    /// Install, with the victim stopped as briefly as the patch allows: the text is read, analysed and the trampolines
    /// written while it may run (nothing jumps to a trampoline yet, and the text under our traps and jumps is known);
    /// arenas that are missing are mapped first, in a stop of their own; then one stop checks the threads and stacks,
    /// writes the entries' jumps and moves threads.
    /// </summary>
    private CounterPlacement[] InstallOnOwner(IReadOnlyList<CounterSite> sites)
    {
        ThrowIfNotControlled("install counters");
        var placements = new CounterPlacement?[sites.Count];
        var plans = new List<PlannedCounter>(sites.Count);
        var texts = new byte[sites.Count][];
        var homeless = new List<int>();
        var first = new Dictionary<ulong, int>();
        var maps = ProcMaps.ReadOrThrow(Kernel, Pid);
        for (var i = 0; i < sites.Count; i++)
        {
            var site = sites[i];
            if (_counters.At(site.Entry) is { } existing)
            {
                placements[i] = new CounterPlacement(site, existing, null);
            }
            else if (!first.TryAdd(site.Entry, i))
            {
                continue; // the same entry twice: it gets the first one's placement
            }
            else if ((texts[i] = ReadFunction(site)).Length == 0)
            {
                placements[i] = CounterPlacement.Refused(site, $"0x{site.Entry:x}: the text cannot be read");
            }
            else if (_counters.ArenaFor(site.Entry) is null)
            {
                homeless.Add(i);
            }
            else
            {
                placements[i] = Plan(i, site, texts[i], plans, maps);
            }
        }

        if (homeless.Count > 0)
        {
            var noArena = MapArenas(homeless.Select(i => sites[i].Entry));
            foreach (var i in homeless)
            {
                placements[i] = _counters.ArenaFor(sites[i].Entry) is null
                    ? CounterPlacement.Refused(sites[i], noArena ?? $"0x{sites[i].Entry:x}: no counter arena with a free slot is within reach")
                    : Plan(i, sites[i], texts[i], plans, maps);
            }
        }

        WriteTrampolines(plans);
        if (plans.Count > 0)
        {
            var interiors = plans.SelectMany(p => InteriorPcs(p.Trampoline)).ToHashSet(); // before the stop, as all that needs no stop
            _ = WithEveryThreadStopped(CounterChange.Install, () =>
            {
                ThrowIfNotControlled("install counters");
                Patch(plans, placements, interiors);
                return 0;
            });
        }

        for (var i = 0; i < sites.Count; i++)
        {
            placements[i] ??= placements[first[sites[i].Entry]];
        }

        return [.. placements.Select(p => p!.Value)];
    }

    /// <summary>
    /// Builds the trampoline of <paramref name="site"/> in the next slot of its arena and reserves the slot; null (planned)
    /// or the refusal. A slot is taken only by a site the analysis accepts.
    /// </summary>
    private CounterPlacement? Plan(int index, CounterSite site, byte[] text, List<PlannedCounter> plans, IReadOnlyList<ProcMapsEntry> maps)
    {
        var arena = _counters.ArenaFor(site.Entry)!;
        var build = CounterTrampoline.Build(site.Entry, text, site.FunctionLength, arena.NextCode, arena.NextCounter);
        if (build.Trampoline is not { } trampoline)
        {
            return CounterPlacement.Refused(site, build.Refusal!.Detail);
        }

        if (trampoline.Code.Length > CounterArena.CodeSlotBytes)
        {
            return CounterPlacement.Refused(site, $"0x{site.Entry:x}: its trampoline takes {trampoline.Code.Length} bytes, more than a slot's {CounterArena.CodeSlotBytes}");
        }

        if (BranchIntoDisplaced(trampoline.Site, maps) is { } branchedInto)
        {
            return CounterPlacement.Refused(site, branchedInto);
        }

        arena.Reserve();
        plans.Add(new PlannedCounter(index, site, trampoline, arena));
        return null;
    }

    /// <summary>
    /// Why no jump may replace the displaced bytes of <paramref name="site"/>: a direct branch anywhere in the code
    /// mapped around it lands inside them (see <see cref="BranchTargets"/>), or that code cannot be read; null when none.
    /// </summary>
    private string? BranchIntoDisplaced(RelocatedEntry site, IReadOnlyList<ProcMapsEntry> maps)
    {
        var mapping = maps.FirstOrDefault(m => m.IsExecutable && m.Start <= site.Entry && site.Entry < m.End);
        if (mapping.End == 0 || mapping.Size > MaxSweptCode)
        {
            return $"0x{site.Entry:x}: the code mapped around it cannot be searched for branches into the bytes the jump would replace";
        }

        var targets = _counters.BranchTargetsOf(mapping.Path, mapping.Start, mapping.End, () =>
        {
            var code = new byte[mapping.Size];
            if (ReadWithVmReadv(mapping.Start, code, out _) != code.Length)
            {
                return null;
            }

            _traps.Overlay(mapping.Start, code);
            OverlayCounterEntries(mapping.Start, code);
            return BranchTargets.Scan(mapping.Start, code);
        });
        if (targets is null)
        {
            return $"0x{site.Entry:x}: the code mapped around it cannot be read whole, to search it for branches into the bytes the jump would replace";
        }

        return targets.Inside(site.PatchAddress, site.ResumeAddress) is { } branch
            ? $"0x{site.Entry:x}: code of {(mapping.Path.Length > 0 ? mapping.Path : "its mapping")} at 0x{branch.From:x} branches to 0x{branch.Target:x}, inside the bytes the jump would replace"
            : null;
    }

    /// <summary>
    /// Writes the planned trampolines, one write per run of adjacent slots; the victim may run, since no entry jumps
    /// to them yet. A slot whose site a thread check then refuses stays written and unused (slots are never reused).
    /// </summary>
    private void WriteTrampolines(List<PlannedCounter> plans)
    {
        var start = 0;
        while (start < plans.Count)
        {
            var end = start + 1;
            while (end < plans.Count && plans[end].Trampoline.Address == plans[end - 1].Trampoline.Address + CounterArena.CodeSlotBytes)
            {
                end++;
            }

            var run = new byte[(end - start) * CounterArena.CodeSlotBytes];
            run.AsSpan().Fill(Int3);
            for (var k = start; k < end; k++)
            {
                plans[k].Trampoline.Code.CopyTo(run.AsSpan((k - start) * CounterArena.CodeSlotBytes));
            }

            _memory.Write(plans[start].Trampoline.Address, run);
            start = end;
        }
    }

    /// <summary>The stop of an install: each planned entry gets its jump unless the threads or stacks forbid it now.</summary>
    private void Patch(List<PlannedCounter> plans, CounterPlacement?[] placements, HashSet<ulong> interiors)
    {
        var threads = StoppedThreadRegisters();
        var onStacks = SavedPcsOnStacks(threads, interiors);
        var jumps = new List<TextWrite>(plans.Count);
        foreach (var plan in plans)
        {
            var trampoline = plan.Trampoline;
            if (Conflict(trampoline, threads, onStacks) is { } conflict)
            {
                placements[plan.Index] = CounterPlacement.Refused(plan.Site, conflict);
                continue;
            }

            jumps.Add(new TextWrite(trampoline.Site.PatchAddress, trampoline.EntryJump()));
            foreach (var thread in threads)
            {
                if (trampoline.IntoTrampoline(thread.Registers.rip) is { } moved)
                {
                    thread.Registers.rip = moved;
                    thread.Moved = true;
                }
            }

            var counter = plan.Arena.CounterOf(trampoline);
            _counters.Add(counter);
            placements[plan.Index] = new CounterPlacement(plan.Site, counter, null);
        }

        WriteText(jumps);

        WriteMovedThreads(threads);
    }

    /// <summary>The addresses of the displaced instructions after the first: where a signal frame must not return to.</summary>
    private static IEnumerable<ulong> InteriorPcs(CounterTrampoline trampoline) =>
        trampoline.Site.Instructions.Where(i => i.Original > 0).Select(i => trampoline.Site.PatchAddress + (ulong)i.Original);

    /// <summary>
    /// Why the jump cannot go in now: a trap of ours or another counter in its bytes, a thread between instructions
    /// there, or a stack holding the address of an instruction inside them (see <see cref="SavedPcsOnStacks"/>).
    /// </summary>
    private string? Conflict(CounterTrampoline trampoline, List<ThreadPosition> threads, HashSet<ulong> onStacks)
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

        foreach (var pc in InteriorPcs(trampoline))
        {
            if (onStacks.Contains(pc))
            {
                return $"0x{site.Entry:x}: a thread may return to 0x{pc:x}, inside the bytes the jump would replace, from a signal handler (a stack holds that address); try again once the handler returned";
            }
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

        _ = WithEveryThreadStopped(CounterChange.Remove, () =>
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
    private T WithEveryThreadStopped<T>(CounterChange change, Func<T> transaction)
    {
        var began = System.Diagnostics.Stopwatch.GetTimestamp();
        var wasHeld = _stops.Held;
        var stoppedBefore = _threads.Values.Where(t => !t.Running).Select(t => t.Tid).ToHashSet();
        _ = StopAll();
        if (_firstInterruptAt != 0)
        {
            began = _firstInterruptAt; // the victim ran on until then: the owner may have waited for a core before it
        }

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

            Metrics.RecordCountersStopped(change, System.Diagnostics.Stopwatch.GetElapsedTime(began));
        }
    }

    /// <summary>
    /// Writes the entries' bytes back where the jump still is, and moves threads out of the trampolines; every thread is
    /// stopped.
    /// </summary>
    private void TakeOut(List<SharedCounter> live)
    {
        var threads = StoppedThreadRegisters();
        var entries = new List<TextWrite>(live.Count);
        foreach (var counter in live)
        {
            var trampoline = counter.Trampoline;
            counter.Live = false;
            if (!HoldsJump(Pid, trampoline))
            {
                continue; // its object was unloaded (dlclose), or something else rewrote the text: nothing of ours is there
            }

            entries.Add(new TextWrite(trampoline.Site.PatchAddress, trampoline.Site.Displaced));
            foreach (var thread in threads)
            {
                if (trampoline.OutOfTrampoline(thread.Registers.rip) is { } exit)
                {
                    if (exit.ReloadRax)
                    {
                        thread.Registers.rax = SavedRax(thread.Registers.rsp);
                    }

                    thread.Registers.rip = exit.Pc;
                    thread.Moved = true;
                }
            }
        }

        WriteText(entries);
        WriteMovedThreads(threads);
    }

    /// <summary>
    /// Writes <paramref name="writes"/> (disjoint) into the stopped victim's text with as few writes as it can: a
    /// write through /proc/PID/mem costs about 10 µs whatever its length, so writes at most
    /// <see cref="CoalescedGap"/> bytes apart go as one, the bytes between read first and written back unchanged
    /// (every thread is stopped and the owner is the only writer, so they cannot change in between; a gap shorter than
    /// a page touches no page that a write would not have touched anyway). 100 entries of one object: one or two writes.
    /// </summary>
    private void WriteText(List<TextWrite> writes)
    {
        writes.Sort((a, b) => a.Address.CompareTo(b.Address));
        var start = 0;
        while (start < writes.Count)
        {
            var end = start + 1;
            while (end < writes.Count && writes[end].Address <= writes[end - 1].End + CoalescedGap)
            {
                end++;
            }

            if (end - start == 1 || !WriteSpan(writes, start, end))
            {
                for (var k = start; k < end; k++)
                {
                    _memory.Write(writes[k].Address, writes[k].Bytes);
                }
            }

            start = end;
        }
    }

    /// <summary>Writes writes[<paramref name="start"/>..<paramref name="end"/>) as one span; false when the span cannot be read whole.</summary>
    private bool WriteSpan(List<TextWrite> writes, int start, int end)
    {
        var first = writes[start].Address;
        var span = new byte[writes[end - 1].End - first];
        if (ReadWithVmReadv(first, span, out _) != span.Length)
        {
            return false;
        }

        for (var k = start; k < end; k++)
        {
            writes[k].Bytes.CopyTo(span, (int)(writes[k].Address - first));
        }

        _memory.Write(first, span);
        return true;
    }

    /// <summary>The rax a counting head saved below <paramref name="rsp"/> (see <see cref="CounterTrampoline.HeadLength"/>).</summary>
    private ulong SavedRax(ulong rsp)
    {
        var saved = new byte[sizeof(ulong)];
        return _memory.Read(rsp - sizeof(ulong), saved) == saved.Length
            ? BitConverter.ToUInt64(saved)
            : throw new TracerException($"cannot read the rax a counting trampoline saved at 0x{rsp - sizeof(ulong):x}", TracerErrorKind.Gone);
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

    /// <summary>The function's text as it was before our traps and jumps, up to its size (or <see cref="UnsizedFunctionBytes"/>).</summary>
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
        OverlayCounterEntries(site.Entry, text.AsSpan(0, n));
        return text[..n];
    }

    private void ThrowIfNotControlled(string what)
    {
        if (_dead || _released || _lost)
        {
            throw new TracerException($"pid {Pid}: cannot {what}: the process is no longer controlled", TracerErrorKind.Gone);
        }
    }

    /// <summary>
    /// Which of <paramref name="wanted"/> an aligned 8-byte word of the top <see cref="StackScanBytes"/> of some thread's
    /// stack holds. A thread that a signal interrupted keeps its PC in the signal frame on its stack (the kernel's
    /// rt_sigframe, on an alternate stack too, where its stack pointer then is) and returns there with sigreturn, which
    /// no move of ours reaches. An address inside displaced bytes is no return address (calls are never displaced), so
    /// such a word is a saved PC or a chance value; either way the site waits, which costs a fallback, never a wrong jump.
    /// </summary>
    private HashSet<ulong> SavedPcsOnStacks(List<ThreadPosition> threads, HashSet<ulong> wanted)
    {
        var found = new HashSet<ulong>();
        if (wanted.Count == 0)
        {
            return found;
        }

        var (lowest, highest) = (wanted.Min(), wanted.Max()); // most words are no address near our sites: no hashing for them
        var stack = new byte[StackScanBytes];
        foreach (var thread in threads)
        {
            var n = ReadWithVmReadv(thread.Registers.rsp & ~7UL, stack, out _);
            var words = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(stack.AsSpan(0, Math.Max(n, 0) & ~7));
            foreach (var word in words)
            {
                if (word >= lowest && word <= highest && wanted.Contains(word))
                {
                    _ = found.Add(word);
                }
            }
        }

        return found;
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

    /// <summary>Bytes for the victim's text at an address.</summary>
    private readonly record struct TextWrite(ulong Address, byte[] Bytes)
    {
        public ulong End => Address + (ulong)Bytes.Length;
    }

    /// <summary>A site whose trampoline is built and written, waiting for the stop that writes its entry's jump.</summary>
    private sealed record PlannedCounter(int Index, CounterSite Site, CounterTrampoline Trampoline, CounterArena Arena);
}
