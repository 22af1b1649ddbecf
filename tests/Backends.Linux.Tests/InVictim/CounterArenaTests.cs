using ProcHex.Arch.X64;
using ProcHex.Backends.Linux.InVictim;

namespace ProcHex.Backends.Linux.Tests.InVictim;

/// <summary>Slots of a counter arena (issue 18 item 3): reserved as trampolines are planned, counted where they were built.</summary>
public sealed class CounterArenaTests
{
    private const ulong Start = 0x7f00_0000_0000;

    // push rbp; mov rbp,rsp; mov eax,edi; pop rbp; ret
    private static readonly byte[] Function = [0x55, 0x48, 0x89, 0xE5, 0x89, 0xF8, 0x5D, 0xC3];

    [Fact]
    [Trait("Issue", "18.3")]
    public void A_trampoline_built_at_the_next_slot_counts_in_that_slots_counter_once_reserved_summed_over_thread_slots()
    {
        using var mapping = new Words(CounterArena.CounterBytes);
        var arena = new CounterArena(Start, mapping);
        arena.Reserve(); // slot 0: planned for another site
        var trampoline = Build(arena);
        arena.Reserve();

        var counter = arena.CounterOf(trampoline);

        Assert.Equal(Start + CounterArena.CodeSlotBytes, trampoline.Address);
        Assert.Equal(Start + CounterArena.CodeBytes + 8, trampoline.Counter);
        mapping.Values[1] = 42; // thread slot 0
        mapping.Values[(CounterTrampoline.ThreadSlotBytes * 31 / 8) + 1] = 8; // thread slot 31
        mapping.Values[0] = 1000; // the other counter's
        mapping.Values[2] = 1000;
        Assert.Equal(50UL, counter.Value);
        Assert.Equal([42UL, .. Enumerable.Repeat(0UL, 30), 8UL], counter.SlotValues());
    }

    [Fact]
    [Trait("Issue", "18.3")]
    public void A_trampoline_in_a_slot_nobody_reserved_has_no_counter_and_a_full_arena_takes_no_more()
    {
        using var mapping = new Words(CounterArena.CounterBytes);
        var arena = new CounterArena(Start, mapping);
        var unreserved = Build(arena);
        Assert.Throws<ArgumentException>(() => arena.CounterOf(unreserved));

        for (var i = 0; i < CounterArena.Slots; i++)
        {
            arena.Reserve();
        }

        Assert.True(arena.IsFull);
        Assert.Throws<InvalidOperationException>(arena.Reserve);
    }

    private static CounterTrampoline Build(CounterArena arena)
    {
        const ulong entry = Start - 0x10_0000;
        return CounterTrampoline.Build(entry, Function, Function.Length, arena.NextCode, arena.NextCounter).Trampoline
            ?? throw new Xunit.Sdk.XunitException("the test function must take a trampoline");
    }

    private sealed class Words(int length) : ISharedMapping
    {
        public ulong[] Values { get; } = new ulong[length / 8];

        public int Length => Values.Length * 8;

        public ulong ReadUInt64(int offset) => Values[offset / 8];

        public void Dispose()
        {
        }
    }
}
