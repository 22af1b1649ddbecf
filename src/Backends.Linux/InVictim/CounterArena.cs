using ProcHex.Ports;

namespace ProcHex.Backends.Linux.InVictim;

/// <summary>
/// One arena in a victim (zero-stop.md): <see cref="CodeBytes"/> of private <c>r-x</c> memory for trampolines, written
/// through /proc/PID/mem only, then <see cref="CounterBytes"/> of a memfd mapped shared in the victim and in the tracer.
/// Code slot i (<see cref="CodeSlotBytes"/>) holds trampoline i; counter i has 8 bytes in each of the
/// <see cref="CounterTrampoline.ThreadSlots"/> thread-slot regions, so the counters one thread increments share lines
/// with each other and with no other thread's (see <see cref="CounterTrampoline"/>). Slots are never reused: a signal
/// frame may still hold a PC in a removed trampoline. Owner only, except the counters' reads.
/// </summary>
internal sealed class CounterArena(ulong start, ISharedMapping counters)
{
    public const int CodeSlotBytes = 128;
    public const int Slots = CounterTrampoline.ThreadSlotBytes / sizeof(ulong);
    public const int CodeBytes = CodeSlotBytes * Slots;
    public const int CounterBytes = CounterTrampoline.ThreadSlotBytes * CounterTrampoline.ThreadSlots;
    public const int TotalBytes = CodeBytes + CounterBytes;

    private int _used;

    /// <summary>Where the arena starts in the victim: its code; the counters follow.</summary>
    public ulong Start { get; } = start;

    public bool IsFull => _used == Slots;

    /// <summary>Where the next trampoline goes.</summary>
    public ulong NextCode => Start + (ulong)(_used * CodeSlotBytes);

    /// <summary>Where the next counter's first thread slot lies in the victim.</summary>
    public ulong NextCounter => Start + CodeBytes + (ulong)(_used * sizeof(ulong));

    /// <summary>Whether the whole arena lies within <see cref="ArenaPlacement.Reach"/> of <paramref name="entry"/>.</summary>
    public bool Reaches(ulong entry) =>
        Distance(entry, Start) <= ArenaPlacement.Reach && Distance(entry, Start + TotalBytes) <= ArenaPlacement.Reach;

    /// <summary>Reserves the next slot: its trampoline is built at <see cref="NextCode"/> and counts at <see cref="NextCounter"/>.</summary>
    public void Reserve()
    {
        if (IsFull)
        {
            throw new InvalidOperationException($"the arena at 0x{Start:x} is full");
        }

        _used++;
    }

    /// <summary>The counter of <paramref name="trampoline"/>, built in a slot reserved here.</summary>
    public SharedCounter CounterOf(CounterTrampoline trampoline)
    {
        var offset = trampoline.Counter - (Start + CodeBytes);
        if (trampoline.Address < Start || offset >= (ulong)(_used * sizeof(ulong)) || offset * (CodeSlotBytes / sizeof(ulong)) != trampoline.Address - Start)
        {
            throw new ArgumentException($"the trampoline at 0x{trampoline.Address:x} was not built in a reserved slot of the arena at 0x{Start:x}", nameof(trampoline));
        }

        return new SharedCounter(trampoline, counters, (int)offset);
    }

    private static ulong Distance(ulong a, ulong b) => a > b ? a - b : b - a;
}

/// <summary>
/// A counter of <see cref="CounterArena"/>: its thread slots, which its trampoline increments, read through the
/// tracer's mapping of the same memfd and summed. <see cref="Value"/> takes no lock and stops nothing; the mapping
/// outlives the victim's image. Each slot only grows, so a read after another never returns less.
/// </summary>
internal sealed class SharedCounter(CounterTrampoline trampoline, ISharedMapping counters, int offset) : ISharedCounter
{
    public ulong Entry => Trampoline.Site.Entry;

    public ulong Value
    {
        get
        {
            var sum = 0UL;
            for (var slot = 0; slot < CounterTrampoline.ThreadSlots; slot++)
            {
                sum += ReadSlot(slot);
            }

            return sum;
        }
    }

    /// <summary>Each thread slot's count, in slot order (what <see cref="Value"/> sums).</summary>
    public ulong[] SlotValues() => [.. Enumerable.Range(0, CounterTrampoline.ThreadSlots).Select(ReadSlot)];

    private ulong ReadSlot(int slot) => counters.ReadUInt64(offset + (slot * CounterTrampoline.ThreadSlotBytes));

    /// <summary>Its code: the entry's patch and the trampoline.</summary>
    public CounterTrampoline Trampoline { get; } = trampoline;

    /// <summary>Its entry jumps to its trampoline (installed and neither removed nor gone with an exec).</summary>
    public bool Live { get; set; } = true;

    public override string ToString() => $"counter at 0x{Entry:x} ({(Live ? "live" : "out")}, {Value})";
}
