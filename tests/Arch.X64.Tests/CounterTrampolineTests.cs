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

    // endbr64; push rbp; mov rbp,rsp; sub rsp,0x10; ret
    private static readonly byte[] EndbrPrologue = [0xF3, 0x0F, 0x1E, 0xFA, 0x55, 0x48, 0x89, 0xE5, 0x48, 0x83, 0xEC, 0x10, 0xC3];

    [Fact]
    [Trait("Issue", "18.3")]
    public void The_trampoline_counts_then_runs_the_displaced_copy_then_jumps_back()
    {
        var trampoline = Built(Entry, EndbrPrologue, Arena);

        var code = EntryPatcherTests.DecodeAll(Arena, trampoline.Code);
        Assert.Equal(Code.Inc_rm64, code[0].Code);
        Assert.True(code[0].HasLockPrefix);
        Assert.True(code[0].IsIPRelativeMemoryOperand);
        Assert.Equal(Counter, code[0].IPRelativeMemoryAddress);
        Assert.Equal((uint)CounterTrampoline.HeadLength, (uint)code[0].Length);
        Assert.Equal(trampoline.Site.Relocated, trampoline.Code[CounterTrampoline.HeadLength..^EntryPatcher.JumpLength]);
        Assert.Equal(Code.Jmp_rel32_64, code[^1].Code);
        Assert.Equal(Entry + 12, code[^1].NearBranchTarget); // past endbr64 + push + mov + sub
        Assert.Equal(trampoline.JumpBackAddress, code[^1].IP);
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
        Assert.Equal(Arena + 8 + 1, trampoline.IntoTrampoline(patch + 1));
        Assert.Equal(Arena + 8 + 4, trampoline.IntoTrampoline(patch + 4));
        Assert.Null(trampoline.IntoTrampoline(patch + 2)); // not an instruction start
        Assert.Null(trampoline.IntoTrampoline(trampoline.Site.ResumeAddress));

        Assert.Equal(patch, trampoline.OutOfTrampoline(Arena)); // before the increment: uncounted, from the entry
        Assert.Equal(patch, trampoline.OutOfTrampoline(Arena + 8)); // the copy's first instruction is the entry's
        Assert.Equal(patch + 1, trampoline.OutOfTrampoline(Arena + 8 + 1));
        Assert.Equal(patch + 4, trampoline.OutOfTrampoline(Arena + 8 + 4));
        Assert.Equal(trampoline.Site.ResumeAddress, trampoline.OutOfTrampoline(trampoline.JumpBackAddress));
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
            var moved = original == trampoline.Site.PatchAddress ? Arena + 8 : trampoline.IntoTrampoline(original);
            Assert.NotNull(moved);
            Assert.Equal(original, trampoline.OutOfTrampoline(moved!.Value));
        }
    }

    [Fact]
    [Trait("Issue", "18.3")]
    public void A_counter_or_a_function_out_of_reach_is_refused_not_thrown()
    {
        var farCounter = CounterTrampoline.Build(Entry, EndbrPrologue, null, Arena, Arena + 0x9000_0000UL);
        Assert.Null(farCounter.Trampoline);
        Assert.Equal(SiteRefusal.OutOfReach, farCounter.Refusal?.Reason);

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
