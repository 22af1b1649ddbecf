using System.Globalization;
using ProcHex.Ports;

namespace ProcHex.Backends.Fake;

/// <summary>
/// In-victim counters (issue 18), modelled on the Linux backend's: a jump written at the entry, a count the execution
/// model increments without a stop, fork children given their text back, vfork children counting for their parent,
/// exec and death taking the jumps with the image, release taking them out. Install and removal are atomic here (the
/// kernel lock stands for the real backend's stop of every thread), so they work on a running victim too.
/// </summary>
public sealed partial class FakeKernel
{
    /// <summary>How many bytes of a function's entry an in-victim counter's jump replaces.</summary>
    public const int CounterJumpLength = FakeCounter.JumpLength;

    /// <summary>How far below an object's text the fake's (nominal) counter arena starts.</summary>
    private const ulong ArenaOffset = 0x10000;

    /// <summary>The bytes of one trampoline slot in the arena.</summary>
    private const ulong SlotBytes = 0x40;

    /// <summary>The entries of <paramref name="pid"/>'s text that hold the jump of a live in-victim counter, in order.</summary>
    /// <param name="pid">The process.</param>
    public IReadOnlyList<ulong> CounterEntries(int pid)
    {
        lock (_gate)
        {
            var memory = Victim(pid).Memory;
            return [.. memory.Counters.Values.Where(c => c.Live && c.HeldBy(memory)).Select(c => c.Entry).Order()];
        }
    }

    /// <summary>
    /// How many calls of <paramref name="address"/> completed in <paramref name="pid"/>'s current image: by its threads
    /// and by a vfork child borrowing its memory, counted or not (ground truth for counters). An exec starts from 0.
    /// </summary>
    /// <param name="pid">The process.</param>
    /// <param name="address">A function's entry.</param>
    public long CallsIn(int pid, ulong address)
    {
        lock (_gate)
        {
            return Victim(pid).Memory.Calls.GetValueOrDefault(address);
        }
    }

    /// <summary>Every address of <paramref name="pid"/>'s current image with its completed calls (see <see cref="CallsIn(int, ulong)"/>), a snapshot.</summary>
    /// <param name="pid">The process.</param>
    public IReadOnlyDictionary<ulong, long> CallsIn(int pid)
    {
        lock (_gate)
        {
            return new Dictionary<ulong, long>(Victim(pid).Memory.Calls);
        }
    }

    /// <summary>How many images <paramref name="pid"/> has exec'd since it started (0 for the first).</summary>
    /// <param name="pid">The process.</param>
    public int ImageGeneration(int pid)
    {
        lock (_gate)
        {
            return Victim(pid).Generation;
        }
    }

    internal IReadOnlyList<CounterPlacement> InstallCounters(FakeProcess process, IReadOnlyList<CounterSite> sites)
    {
        ArgumentNullException.ThrowIfNull(sites);
        if (sites.Count == 0)
        {
            return [];
        }

        lock (_gate)
        {
            var (victim, _) = Controlled(process, FakeOperation.InstallCounters);
            if (victim.Life != VictimLife.Alive)
            {
                throw Gone(victim, "cannot install counters");
            }

            var placements = new CounterPlacement[sites.Count];
            for (var i = 0; i < sites.Count; i++)
            {
                placements[i] = PlaceCounter(victim, sites[i]);
            }

            return placements;
        }
    }

    internal void RemoveCounters(FakeProcess process, IReadOnlyList<ISharedCounter> counters)
    {
        ArgumentNullException.ThrowIfNull(counters);
        var ours = new List<FakeCounter>(counters.Count);
        foreach (var counter in counters)
        {
            ours.Add(counter as FakeCounter is { } fake && fake.OwnerPid == process.Pid
                ? fake
                : throw new ArgumentException($"0x{counter.Entry:x}: not a counter of pid {process.Pid}", nameof(counters)));
        }

        if (ours.Count == 0)
        {
            return;
        }

        lock (_gate)
        {
            var (victim, attachment) = Controlled(process, FakeOperation.RemoveCounters, allowEnded: true);
            if (attachment.Lost || victim.Life != VictimLife.Alive)
            {
                return; // the image and its jumps went with the process: nothing of ours is left to write
            }

            TakeOut(victim, ours.Where(c => c.Live));
        }
    }

    private CounterPlacement PlaceCounter(FakeVictim victim, CounterSite site)
    {
        var entry = site.Entry;
        var memory = victim.Memory;
        if (memory.Counters.TryGetValue(entry, out var existing) && existing.Live && existing.HeldBy(memory))
        {
            return new CounterPlacement(site, existing, null); // as the real backend: one counter per entry
        }

        if (Refusal(victim, site) is { } why)
        {
            Record(victim, $"counter 0x{entry:x} refused: {why}");
            return CounterPlacement.Refused(site, why);
        }

        var displaced = new byte[FakeCounter.JumpLength];
        memory.Read(entry, displaced);
        var mapping = victim.MappingAt(entry)!;
        var slot = (ulong)memory.Counters.Count;
        var counter = new FakeCounter(victim.Pid, entry, mapping.TextStart - ArenaOffset + (slot * SlotBytes), displaced) { Live = true };
        memory.TryWrite(entry, counter.Jump);
        memory.Counters[entry] = counter;
        Record(victim, string.Create(CultureInfo.InvariantCulture, $"counter 0x{entry:x} installed (jump to 0x{counter.Trampoline:x})"));
        return new CounterPlacement(site, counter, null);
    }

    /// <summary>Why the jump cannot go in at <paramref name="site"/>, in the real backend's words where it has them; null when it can.</summary>
    private static string? Refusal(FakeVictim victim, CounterSite site)
    {
        var entry = site.Entry;
        var end = entry + FakeCounter.JumpLength;
        if (victim.MappingAt(entry) is not { } mapping || end > mapping.TextStart + (ulong)mapping.File.Text.Length)
        {
            return $"0x{entry:x}: the text cannot be read";
        }

        if (site.FunctionLength is < FakeCounter.JumpLength)
        {
            return string.Create(CultureInfo.InvariantCulture, $"0x{entry:x}: the function's {site.FunctionLength} bytes cannot take a {FakeCounter.JumpLength}-byte jump");
        }

        if (mapping.File.Unpatchable.Contains(entry - mapping.Bias))
        {
            return $"0x{entry:x}: a branch of the function lands inside the {FakeCounter.JumpLength} bytes the jump would replace";
        }

        for (var address = entry; address < end; address++)
        {
            if (victim.Planted.Contains(address) || victim.Memory.ReadByte(address) == FakeObjectFile.Int3)
            {
                return $"0x{entry:x}: a breakpoint is planted at 0x{address:x}, in the bytes the jump would replace";
            }
        }

        foreach (var other in victim.Memory.Counters.Values)
        {
            if (other.Live && other.Entry < end && entry < other.Entry + FakeCounter.JumpLength && other.HeldBy(victim.Memory))
            {
                return $"0x{entry:x}: the jump of the counter at 0x{other.Entry:x} holds some of its bytes";
            }
        }

        return null;
    }

    /// <summary>The live counter whose jump holds <paramref name="address"/>, if any: no trap may go there (the real backend's EBUSY).</summary>
    private static FakeCounter? CounterCovering(FakeVictim victim, ulong address) =>
        victim.Memory.Counters.Values.FirstOrDefault(c => c.Live && address >= c.Entry && address < c.Entry + FakeCounter.JumpLength && c.HeldBy(victim.Memory));

    /// <summary>Writes the entries' bytes back where the jump still is; the counts stay readable.</summary>
    private void TakeOut(FakeVictim victim, IEnumerable<FakeCounter> counters)
    {
        foreach (var counter in counters.ToList())
        {
            counter.Live = false;
            if (!counter.HeldBy(victim.Memory))
            {
                // Its object was unloaded, or something else rewrote the text: nothing of ours is there.
                Record(victim, $"counter 0x{counter.Entry:x} forgotten");
                continue;
            }

            victim.Memory.TryWrite(counter.Entry, counter.Displaced);
            Record(victim, $"counter 0x{counter.Entry:x} removed");
        }
    }

    /// <summary>Release: every live counter out of the text, so the victim runs on with its own code.</summary>
    private void TakeCountersOut(FakeVictim victim)
    {
        if (victim.Life == VictimLife.Alive && victim.Attachment is { Lost: false })
        {
            TakeOut(victim, victim.Memory.Counters.Values.Where(c => c.Live && c.OwnerPid == victim.Pid));
        }
    }

    /// <summary>Exec or death: the jumps go with the image; the counters stop, their values stay.</summary>
    private static void ForgetCounters(FakeVictim victim)
    {
        foreach (var counter in victim.Memory.Counters.Values)
        {
            if (counter.OwnerPid == victim.Pid)
            {
                counter.Live = false;
            }
        }
    }

    /// <summary>
    /// A fork child's copy of the text holds the jumps but none of the arenas (MADV_DONTFORK): each entry gets its
    /// bytes back before the child runs.
    /// </summary>
    private void RestoreCounterEntries(FakeVictim parent, FakeVictim child)
    {
        foreach (var counter in parent.Memory.Counters.Values)
        {
            if (counter.HeldBy(child.Memory))
            {
                child.Memory.TryWrite(counter.Entry, counter.Displaced);
                Record(child, $"counter entry 0x{counter.Entry:x} restored in the fork child");
            }
        }
    }

    /// <summary>A thread runs the instruction at <paramref name="address"/>: through a counter's jump, the count goes up.</summary>
    private static void CountCall(FakeVictim victim, ulong address)
    {
        var memory = victim.Memory;
        if (memory.Counters.TryGetValue(address, out var counter) && counter.Live && counter.HeldBy(memory))
        {
            counter.Increment();
        }

        memory.Calls[address] = memory.Calls.GetValueOrDefault(address) + 1;
    }
}
