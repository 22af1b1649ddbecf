using Iced.Intel;

namespace ProcHex.Arch.X64.Tests;

/// <summary>
/// The counting trampoline of issue 18 (zero-stop.md "Shape"): a locked increment of the shared counter, the displaced
/// instructions relocated, a jump back; and the PC maps that move stopped threads at install and at removal.
/// </summary>
public sealed class CounterTrampolineTests
{
    private const ulong Entry = 0x5555_5555_1000;
    private const ulong Arena = Entry + 0x2000_0000;
    private const ulong Counter = Arena + 0x1_0000;
    private const ulong Head = CounterTrampoline.HeadLength;

    // endbr64; push rbp; mov rbp,rsp; sub rsp,0x10; ret
    private static readonly byte[] EndbrPrologue = [0xF3, 0x0F, 0x1E, 0xFA, 0x55, 0x48, 0x89, 0xE5, 0x48, 0x83, 0xEC, 0x10, 0xC3];

    [Fact]
    [Trait("Issue", "18.3")]
    public void The_trampoline_counts_in_this_threads_slot_then_runs_the_displaced_copy_then_jumps_back()
    {
        var trampoline = Built(Entry, EndbrPrologue, Arena);

        var code = EntryPatcherTests.DecodeAll(Arena, trampoline.Code.AsSpan(0, (int)(trampoline.CodeEnd - Arena)).ToArray());
        Assert.Equal(
            ["mov [rsp-8],rax", "mov rax,rsp", "shr rax,14h", "imul eax,9E3779B1h", "shr eax,1Bh", "shl eax,0Dh", $"add rax,[{code[6].IPRelativeMemoryAddress:X}h]", "lock inc qword ptr [rax]", "mov rax,[rsp-8]"],
            code.Take(9).Select(i => i.ToString()));
        Assert.Equal(CounterTrampoline.HeadInstructions, code.Take(9).Select(i => (int)(i.IP - Arena)));
        Assert.Equal(Counter, BitConverter.ToUInt64(trampoline.Code, (int)(code[6].IPRelativeMemoryAddress - Arena))); // the counter's address, as data after the code
        Assert.Equal(0UL, code[6].IPRelativeMemoryAddress % 8);
        Assert.True(code[6].IPRelativeMemoryAddress >= trampoline.CodeEnd);
        Assert.Equal(CounterTrampoline.CountedFrom, (int)(code[8].IP - Arena));
        Assert.Equal(trampoline.Site.Relocated, trampoline.Code[CounterTrampoline.HeadLength..(int)(trampoline.JumpBackAddress - Arena)]);
        Assert.Equal(Code.Jmp_rel32_64, code[^1].Code);
        Assert.Equal(Entry + 12, code[^1].NearBranchTarget); // past endbr64 + push + mov + sub
        Assert.Equal(trampoline.JumpBackAddress, code[^1].IP);
    }

    /// <summary>
    /// The slot the head computes (its shifts and multiplier, as encoded) is the one <see cref="CounterTrampoline.SlotOffset"/>
    /// names; 8 threads whose stacks lie 1, 2, 8 or 32 MiB (and a guard page) apart, as a JVM's, Rust's and glibc's
    /// threads' do, take 8 different slots wherever the first stack lies (a C loop over every page-aligned first stack
    /// from 0x7f00_0000_0000 up found no exception; the property samples that range).
    /// </summary>
    [Fact]
    [Trait("Issue", "18.3")]
    public void Threads_whose_stacks_lie_apart_count_in_different_slots()
    {
        var code = EntryPatcherTests.DecodeAll(Arena, Built(Entry, EndbrPrologue, Arena).Code.AsSpan(0, CounterTrampoline.HeadLength).ToArray());
        ulong HeadSlot(ulong rsp) => (((uint)(rsp >> code[2].Immediate8) * code[3].Immediate32) >> code[4].Immediate8) << code[5].Immediate8;

        foreach (var rsp in new ulong[] { 0x7f12_3480_0000, 0x7f12_347f_edc8, 0x7ffd_1234_5678, 0x10_0000 })
        {
            Assert.Equal(CounterTrampoline.SlotOffset(rsp), HeadSlot(rsp));
            Assert.Equal(0UL, HeadSlot(rsp) % CounterTrampoline.ThreadSlotBytes);
            Assert.True(HeadSlot(rsp) < CounterTrampoline.ThreadSlots * CounterTrampoline.ThreadSlotBytes);
        }

        ulong[] stacks = [1UL << 20, 3UL << 19, 2UL << 20, 8UL << 20, 32UL << 20];
        Gen.Select(Gen.ULong[0x7f00_0000_0000, 0x7fff_ffff_0000], Gen.Int[0, stacks.Length - 1]).Sample((top, i) =>
        {
            var stack = stacks[i];
            var slots = Enumerable.Range(0, 8).Select(t => HeadSlot(top - ((ulong)t * (stack + 0x1000)) - 0x200)).Distinct().Count();
            Assert.True(slots == 8, $"stacks of {stack >> 20} MiB from 0x{top:x}: 8 threads in {slots} slots");
        });
    }

    [Fact]
    [Trait("Issue", "18.3")]
    public void A_thread_stopped_in_the_head_after_rax_was_saved_gets_it_back_when_it_leaves()
    {
        var trampoline = Built(Entry, EndbrPrologue, Arena);

        var exits = CounterTrampoline.HeadInstructions.Select(offset => trampoline.OutOfTrampoline(Arena + (ulong)offset)).ToList();

        Assert.All(exits, exit => Assert.Equal(trampoline.Site.PatchAddress, exit?.Pc));
        Assert.Equal([false, true, true, true, true, true, true, true, true], exits.Select(e => e!.Value.ReloadRax));
        Assert.Null(trampoline.OutOfTrampoline(trampoline.CodeEnd)); // padding and data: no thread runs there
    }

    [Fact]
    [Trait("Issue", "18.3")]
    public void The_entry_jump_lands_on_the_trampoline()
    {
        var trampoline = Built(Entry, EndbrPrologue, Arena);

        var jump = EntryPatcherTests.DecodeAll(trampoline.Site.PatchAddress, trampoline.EntryJump());
        Assert.Equal(Code.Jmp_rel32_64, jump[0].Code);
        Assert.Equal(Arena, jump[0].NearBranchTarget);
        Assert.Equal(trampoline.Site.Displaced.Length, trampoline.EntryJump().Length);
    }

    [Fact]
    [Trait("Issue", "18.3")]
    public void A_thread_inside_the_displaced_bytes_moves_to_the_same_instruction_in_the_copy_and_back()
    {
        var trampoline = Built(Entry, EndbrPrologue, Arena);
        var patch = trampoline.Site.PatchAddress; // Entry + 4: push rbp (1), mov rbp,rsp (3), sub rsp,0x10 (4)

        Assert.Null(trampoline.IntoTrampoline(Entry)); // before the patch: runs endbr64, then the jump
        Assert.Null(trampoline.IntoTrampoline(patch)); // at the jump itself
        Assert.Equal(Arena + Head + 1, trampoline.IntoTrampoline(patch + 1));
        Assert.Equal(Arena + Head + 4, trampoline.IntoTrampoline(patch + 4));
        Assert.Null(trampoline.IntoTrampoline(patch + 2)); // not an instruction start
        Assert.Null(trampoline.IntoTrampoline(trampoline.Site.ResumeAddress));

        Assert.Equal(patch, trampoline.OutOfTrampoline(Arena)?.Pc); // before the increment: uncounted, from the entry
        Assert.Equal(patch, trampoline.OutOfTrampoline(Arena + Head)?.Pc); // the copy's first instruction is the entry's
        Assert.Equal(patch + 1, trampoline.OutOfTrampoline(Arena + Head + 1)?.Pc);
        Assert.Equal(patch + 4, trampoline.OutOfTrampoline(Arena + Head + 4)?.Pc);
        Assert.Equal(trampoline.Site.ResumeAddress, trampoline.OutOfTrampoline(trampoline.JumpBackAddress)?.Pc);
        Assert.Null(trampoline.OutOfTrampoline(Arena + (ulong)trampoline.Code.Length));
        Assert.Null(trampoline.OutOfTrampoline(Arena - 1));
    }

    [Fact]
    [Trait("Issue", "18.3")]
    public void Every_instruction_of_the_copy_maps_back_to_the_original_it_was_copied_from()
    {
        // mov %edi,-0x4(%rsp); mov rax,[rip+0x2000]; ret: a RIP-relative load rewritten with a new displacement
        byte[] code = [0x89, 0x7C, 0x24, 0xFC, 0x48, 0x8B, 0x05, 0x00, 0x20, 0x00, 0x00, 0xC3];
        var trampoline = Built(Entry, code, Arena);

        foreach (var instruction in trampoline.Site.Instructions)
        {
            var original = trampoline.Site.PatchAddress + (ulong)instruction.Original;
            var moved = original == trampoline.Site.PatchAddress ? Arena + Head : trampoline.IntoTrampoline(original);
            Assert.NotNull(moved);
            Assert.Equal(new TrampolineExit(original, ReloadRax: false), trampoline.OutOfTrampoline(moved!.Value));
        }
    }

    [Fact]
    [Trait("Issue", "18.3")]
    public void A_function_out_of_reach_is_refused_not_thrown_and_a_far_counter_is_fine()
    {
        var farCounter = CounterTrampoline.Build(Entry, EndbrPrologue, null, Arena, 0x10_0000UL); // the head loads its address
        Assert.Equal(0x10_0000UL, farCounter.Trampoline?.Counter);

        // push rbp; mov rbp,rsp; sub rsp,0x10; ret with its trampoline 3 GiB away: the jump back cannot reach
        byte[] plain = [0x55, 0x48, 0x89, 0xE5, 0x48, 0x83, 0xEC, 0x10, 0xC3];
        var far = Entry + 0xC000_0000UL;
        var farArena = CounterTrampoline.Build(Entry, plain, null, far, far + 0x1000);
        Assert.Equal(SiteRefusal.OutOfReach, farArena.Refusal?.Reason);
    }

    [Fact]
    [Trait("Issue", "18.3")]
    public void An_unsafe_site_is_refused_with_the_patchers_reason()
    {
        byte[] call = [0xE8, 0x00, 0x00, 0x00, 0x00, 0xC3];

        var build = CounterTrampoline.Build(Entry, call, null, Arena, Counter);

        Assert.Equal(SiteRefusal.ControlFlow, build.Refusal?.Reason);
    }

    private static CounterTrampoline Built(ulong entry, byte[] code, ulong arena) =>
        CounterTrampoline.Build(entry, code, null, arena, Counter) is { Trampoline: { } t } ? t
            : throw new Xunit.Sdk.XunitException("refused");
}
