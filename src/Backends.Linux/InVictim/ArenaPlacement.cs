using ProcHex.Backends.Linux.Symbols;

namespace ProcHex.Backends.Linux.InVictim;

/// <summary>
/// Where a counter arena may go in a victim (zero-stop.md "Placement"): a free gap of /proc/PID/maps within reach of
/// the probed code, since the entry's <c>jmp rel32</c>, the jump back and the trampoline's RIP-relative operands all
/// reach ±2 GiB. Pure.
/// </summary>
internal static class ArenaPlacement
{
    /// <summary>How far an arena may lie from the function: half the rel32 reach, so the function's own RIP-relative data (same object) stays in reach of the copy.</summary>
    public const ulong Reach = 1UL << 30;

    /// <summary>A page left free on each side: nothing grows into the arena, and the arena does not end a neighbour's guard.</summary>
    public const ulong Guard = 0x1000;

    /// <summary>Room left above <c>[heap]</c> for brk to grow into.</summary>
    public const ulong HeapRoom = 1UL << 30;

    /// <summary>Room left below <c>[stack]</c> for the main stack to grow into (RLIMIT_STACK is 8 MiB by default).</summary>
    public const ulong StackRoom = 256UL << 20;

    private const ulong LowestAddress = 0x1_0000;   // vm.mmap_min_addr's usual value
    private const ulong HighestAddress = 0x7fff_ffff_f000; // the 47-bit user address space's top page

    /// <summary>
    /// Page-aligned starts for <paramref name="size"/> bytes in the gaps of <paramref name="maps"/> (sorted or not), each
    /// wholly within <see cref="Reach"/> of <paramref name="target"/>, best first: gaps below the target before gaps
    /// above (above an executable lies its heap, which brk grows into), nearest first, each placed against the gap's
    /// edge nearest the target. <see cref="HeapRoom"/> above <c>[heap]</c> and <see cref="StackRoom"/> below
    /// <c>[stack]</c> stay free for them to grow.
    /// </summary>
    public static IReadOnlyList<ulong> Candidates(IReadOnlyList<ProcMapsEntry> maps, ulong target, ulong size)
    {
        var sorted = maps.OrderBy(m => m.Start).ToList();
        var low = target > Reach + LowestAddress ? target - Reach : LowestAddress;
        var high = Math.Min(target + Reach, HighestAddress);
        var below = new List<ulong>();
        var above = new List<ulong>();
        var previousEnd = LowestAddress;
        string? previousPath = null;
        for (var i = 0; i <= sorted.Count; i++)
        {
            var next = i < sorted.Count ? sorted[i] : default;
            var gapStart = previousEnd + (previousPath == "[heap]" ? HeapRoom : Guard);
            var nextStart = i < sorted.Count ? next.Start : HighestAddress;
            var stackRoom = i < sorted.Count && next.Path == "[stack]" ? StackRoom : Guard;
            var gapEnd = nextStart > stackRoom ? nextStart - stackRoom : 0;
            if (gapEnd > gapStart)
            {
                var from = Math.Max(gapStart, low);
                var to = Math.Min(gapEnd, high);
                var nearTop = to > size ? (to - size) & ~0xfffUL : 0;
                var nearBottom = PageUp(from);
                if (to <= target && nearTop >= from)
                {
                    below.Add(nearTop);
                }
                else if (to > target && nearBottom + size <= to)
                {
                    above.Add(nearBottom);
                }
            }

            if (i < sorted.Count)
            {
                previousEnd = Math.Max(previousEnd, next.End);
                previousPath = next.Path;
            }
        }

        below.Sort((a, b) => b.CompareTo(a));
        above.Sort();
        return [.. below, .. above];
    }

    private static ulong PageUp(ulong address) => (address + 0xfff) & ~0xfffUL;
}
