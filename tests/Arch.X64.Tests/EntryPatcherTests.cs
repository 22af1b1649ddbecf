using Iced.Intel;

namespace ProcHex.Arch.X64.Tests;

/// <summary>
/// The entry patcher of issue 18 item 2 (built for issue 16 item 1): real prologue shapes are relocated with their
/// effect unchanged, unsafe sites are refused with a reason, and the rel32 jumps reach exactly ±2 GiB.
/// </summary>
public sealed class EntryPatcherTests
{
    private const ulong Entry = 0x5555_5555_1000;
    private const ulong Far = Entry + 0x4000_0000; // a code arena 1 GiB above the function

    [Theory]
    [Trait("Issue", "18.2")]
    [InlineData("push rbp; mov rbp,rsp; sub rsp,0x10", new byte[] { 0x55, 0x48, 0x89, 0xE5, 0x48, 0x83, 0xEC, 0x10, 0xC3 }, 0, new[] { 0, 1, 4 })]
    [InlineData("endbr64; push rbp; mov rbp,rsp; sub rsp,0x10", new byte[] { 0xF3, 0x0F, 0x1E, 0xFA, 0x55, 0x48, 0x89, 0xE5, 0x48, 0x83, 0xEC, 0x10, 0xC3 }, 4, new[] { 0, 1, 4 })]
    [InlineData("mov %edi,-0x4(%rsp); mov eax,edi (Debian -O2)", new byte[] { 0x89, 0x7C, 0x24, 0xFC, 0x89, 0xF8, 0xC3 }, 0, new[] { 0, 4 })]
    [InlineData("push r15; push r14; push r13", new byte[] { 0x41, 0x57, 0x41, 0x56, 0x41, 0x55, 0xC3 }, 0, new[] { 0, 2, 4 })]
    [InlineData("sub rsp,0x100 (one instruction of 7 bytes)", new byte[] { 0x48, 0x81, 0xEC, 0x00, 0x01, 0x00, 0x00, 0xC3 }, 0, new[] { 0 })]
    public void Prologues_are_displaced_whole_and_relocated_unchanged(string shape, byte[] code, int skipped, int[] offsets)
    {
        var site = Patchable(EntryPatcher.Analyze(Entry, code, Far), shape);

        Assert.Equal(Entry + (ulong)skipped, site.PatchAddress);
        Assert.True(site.Displaced.Length >= EntryPatcher.JumpLength, shape);
        Assert.Equal(code.AsSpan(skipped, site.Displaced.Length).ToArray(), site.Displaced);
        Assert.Equal(offsets, site.Instructions.Select(i => i.Original));
        Assert.Equal(offsets, site.Instructions.Select(i => i.Relocated ?? -1)); // nothing rewritten into another form
        Assert.Equal(site.Displaced, site.Relocated); // no RIP-relative operand: the copy is the same bytes
    }

    [Theory]
    [Trait("Issue", "18.2")]
    [InlineData("mov rax,[rip+0x2000]", new byte[] { 0x48, 0x8B, 0x05, 0x00, 0x20, 0x00, 0x00, 0xC3 })]
    [InlineData("lea rdi,[rip-0x100]; ret", new byte[] { 0x48, 0x8D, 0x3D, 0x00, 0xFF, 0xFF, 0xFF, 0xC3 })]
    [InlineData("cmp dword [rip+0x30],0 (an immediate after the displacement)", new byte[] { 0x83, 0x3D, 0x30, 0x00, 0x00, 0x00, 0x00, 0xC3 })]
    [InlineData("push rbp; mov rax,[rip+0x10]", new byte[] { 0x55, 0x48, 0x8B, 0x05, 0x10, 0x00, 0x00, 0x00, 0xC3 })]
    [InlineData("endbr64; lea rax,[rip+0x7fff0000] (near the edge of reach)", new byte[] { 0xF3, 0x0F, 0x1E, 0xFA, 0x48, 0x8D, 0x05, 0x00, 0x00, 0xFF, 0x7F, 0xC3 })]
    public void Rip_relative_operands_keep_their_effective_address(string shape, byte[] code)
    {
        var site = Patchable(EntryPatcher.Analyze(Entry, code, Far), shape);

        var original = DecodeAll(site.PatchAddress, site.Displaced);
        var relocated = DecodeAll(site.RelocatedAddress, site.Relocated);
        AssertSameEffect(original, relocated, site);
        Assert.Contains(relocated, i => i.IsIPRelativeMemoryOperand);
    }

    [Theory]
    [Trait("Issue", "18.2")]
    [InlineData("test edi,edi; je +3 (a short jcc in the first 5 bytes)", new byte[] { 0x85, 0xFF, 0x74, 0x03, 0x90, 0x90, 0x90, 0xC3 }, nameof(SiteRefusal.ControlFlow))]
    [InlineData("call rel32 first", new byte[] { 0xE8, 0x00, 0x00, 0x00, 0x00, 0xC3 }, nameof(SiteRefusal.ControlFlow))]
    [InlineData("xor eax,eax; ret", new byte[] { 0x31, 0xC0, 0xC3 }, nameof(SiteRefusal.ControlFlow))]
    [InlineData("push rbx; jmp rax", new byte[] { 0x53, 0xFF, 0xE0, 0x90, 0x90, 0x90 }, nameof(SiteRefusal.ControlFlow))]
    [InlineData("push rbx; call [rip+0]", new byte[] { 0x53, 0xFF, 0x15, 0x00, 0x00, 0x00, 0x00 }, nameof(SiteRefusal.ControlFlow))]
    [InlineData("push rbx; syscall", new byte[] { 0x53, 0x0F, 0x05, 0x90, 0x90, 0xC3 }, nameof(SiteRefusal.Trap))]
    [InlineData("nop; int3", new byte[] { 0x90, 0xCC, 0x90, 0x90, 0x90, 0x90 }, nameof(SiteRefusal.Trap))]
    [InlineData("push rbp; ud2", new byte[] { 0x55, 0x0F, 0x0B, 0x90, 0x90, 0x90 }, nameof(SiteRefusal.Trap))]
    [InlineData("push rbp; hlt", new byte[] { 0x55, 0xF4, 0x90, 0x90, 0x90, 0x90 }, nameof(SiteRefusal.Trap))]
    [InlineData("xbegin", new byte[] { 0xC7, 0xF8, 0x00, 0x00, 0x00, 0x00, 0xC3 }, nameof(SiteRefusal.Transactional))]
    [InlineData("xor eax,eax; inc eax; cmp eax,10; jne entry+2 (a loop into the displaced bytes)",
        new byte[] { 0x31, 0xC0, 0xFF, 0xC0, 0x83, 0xF8, 0x0A, 0x75, 0xF9, 0xC3 }, nameof(SiteRefusal.BranchIntoDisplaced))]
    [InlineData("an invalid opcode", new byte[] { 0x06, 0x90, 0x90, 0x90, 0x90, 0x90 }, nameof(SiteRefusal.Undecodable))]
    [InlineData("four nops and nothing after", new byte[] { 0x90, 0x90, 0x90, 0x90 }, nameof(SiteRefusal.TooShort))]
    [InlineData("endbr64 and a cut instruction", new byte[] { 0xF3, 0x0F, 0x1E, 0xFA, 0x48, 0x81, 0xEC }, nameof(SiteRefusal.TooShort))]
    public void Unsafe_sites_are_refused_with_their_reason(string shape, byte[] code, string reason)
    {
        var analysis = EntryPatcher.Analyze(Entry, code, Far);

        Assert.Null(analysis.Entry);
        Assert.Equal(Enum.Parse<SiteRefusal>(reason), analysis.Refusal?.Reason);
        Assert.False(string.IsNullOrWhiteSpace(analysis.Refusal?.Detail), shape);
    }

    [Fact]
    [Trait("Issue", "18.2")]
    public void A_function_shorter_than_the_jump_is_refused_even_when_bytes_follow()
    {
        byte[] code = [0x55, 0x48, 0x89, 0xE5, 0x48, 0x83, 0xEC, 0x10]; // push rbp; mov rbp,rsp | the next function's bytes

        Assert.Equal(SiteRefusal.TooShort, EntryPatcher.Analyze(Entry, code, Far, functionLength: 4).Refusal?.Reason);
        Assert.NotNull(EntryPatcher.Analyze(Entry, code, Far, functionLength: 8).Entry);
    }

    [Fact]
    [Trait("Issue", "18.2")]
    public void A_branch_to_the_patch_address_itself_is_allowed_one_inside_is_not()
    {
        // push rbp; mov rbp,rsp; sub rsp,0x10; ...; jmp entry (the start: lands on the jump, fine)
        byte[] toStart = [0x55, 0x48, 0x89, 0xE5, 0x48, 0x83, 0xEC, 0x10, 0x90, 0xEB, 0xF5];
        byte[] toInside = [0x55, 0x48, 0x89, 0xE5, 0x48, 0x83, 0xEC, 0x10, 0x90, 0xEB, 0xF6];

        Assert.NotNull(EntryPatcher.Analyze(Entry, toStart, Far).Entry);
        Assert.Equal(SiteRefusal.BranchIntoDisplaced, EntryPatcher.Analyze(Entry, toInside, Far).Refusal?.Reason);
    }

    [Fact]
    [Trait("Issue", "18.2")]
    public void A_rip_relative_operand_out_of_reach_of_the_copy_is_refused_not_thrown()
    {
        byte[] code = [0x48, 0x8B, 0x05, 0x00, 0x00, 0x00, 0x70, 0xC3]; // mov rax,[rip+0x70000000]
        var analysis = EntryPatcher.Analyze(Entry, code, Entry - 0x3000_0000);

        Assert.Equal(SiteRefusal.RelocationFailed, analysis.Refusal?.Reason);
    }

    [Fact]
    [Trait("Issue", "18.2")]
    public void The_entry_jump_reaches_the_trampoline_and_pads_with_nops_and_the_copy_jumps_back()
    {
        byte[] code = [0xF3, 0x0F, 0x1E, 0xFA, 0x55, 0x48, 0x89, 0xE5, 0x48, 0x83, 0xEC, 0x10, 0xC3];
        var site = Patchable(EntryPatcher.Analyze(Entry, code, Far + 0x40), "endbr64 prologue");

        var patch = site.EntryJump(Far).Bytes!;
        Assert.Equal(site.Displaced.Length, patch.Length);
        var jump = DecodeAll(site.PatchAddress, patch);
        Assert.Equal(Code.Jmp_rel32_64, jump[0].Code);
        Assert.Equal(Far, jump[0].NearBranchTarget);
        Assert.All(jump.Skip(1), i => Assert.Equal(Code.Nopd, i.Code));

        var back = site.JumpBack(site.RelocatedAddress + (ulong)site.Relocated.Length).Bytes!;
        var decoded = DecodeAll(site.RelocatedAddress + (ulong)site.Relocated.Length, back).Single();
        Assert.Equal(Code.Jmp_rel32_64, decoded.Code);
        Assert.Equal(Entry + 12, decoded.NearBranchTarget);
    }

    [Fact]
    [Trait("Issue", "18.2")]
    public void Jumps_reach_exactly_plus_and_minus_2_GiB()
    {
        const ulong From = 0x7f00_0000_0000;
        var lowest = From + EntryPatcher.JumpLength - 0x8000_0000UL;
        var highest = From + EntryPatcher.JumpLength + int.MaxValue;

        Assert.Equal(lowest, DecodeAll(From, EntryPatcher.EncodeJump(From, lowest).Bytes!).Single().NearBranchTarget);
        Assert.Equal(highest, DecodeAll(From, EntryPatcher.EncodeJump(From, highest).Bytes!).Single().NearBranchTarget);
        Assert.Equal(SiteRefusal.OutOfReach, EntryPatcher.EncodeJump(From, lowest - 1).Refusal?.Reason);
        Assert.Equal(SiteRefusal.OutOfReach, EntryPatcher.EncodeJump(From, highest + 1).Refusal?.Reason);
    }

    [Fact]
    [Trait("Issue", "18.2")]
    public void Property_any_jump_within_rel32_decodes_to_its_target_and_any_beyond_is_refused()
    {
        Gen.Select(Gen.ULong[0x1_0000, 0x7fff_ffff_0000], Gen.Long[-0x1_0000_0000L, 0x1_0000_0000L]).Sample((from, delta) =>
        {
            var to = (ulong)((long)from + delta);
            var encoded = EntryPatcher.EncodeJump(from, to);
            var reachable = delta - EntryPatcher.JumpLength is >= int.MinValue and <= int.MaxValue;
            Assert.Equal(reachable, encoded.Bytes is not null);
            Assert.Equal(!reachable, encoded.Refusal is { Reason: SiteRefusal.OutOfReach });
            if (encoded.Bytes is { } bytes)
            {
                Assert.Equal(to, DecodeAll(from, bytes).Single().NearBranchTarget);
            }
        }, iter: 5_000);
    }

    [Fact]
    [Trait("Issue", "18.2")]
    public void Property_relocated_prologues_do_what_the_originals_did()
    {
        var instruction = Gen.Select(Gen.Int[0, 7], Gen.Int[0, Gprs.Length - 1], Gen.Int[0, Gprs.Length - 1], Gen.Int[-0x3fff_0000, 0x3fff_0000]);
        var gen = Gen.Select(Gen.Bool, instruction.Array[1, 6], Gen.ULong[0x10_0000, 0x7fff_0000_0000], Gen.Long[-0x3fff_0000L, 0x3fff_0000L]);
        gen.Sample((endbr, plan, entry, arena) =>
        {
            var code = Assemble(entry, endbr, plan);
            var relocatedAt = (ulong)((long)entry + arena);
            var analysis = EntryPatcher.Analyze(entry, code, relocatedAt);
            var body = code.Length - 1 - (endbr ? 4 : 0); // the planned instructions, without endbr64 and the final ret
            if (body < EntryPatcher.JumpLength)
            {
                Assert.Equal(SiteRefusal.ControlFlow, analysis.Refusal?.Reason); // the ret comes before 5 bytes
                return;
            }

            var site = Patchable(analysis, $"{plan.Length} instructions at 0x{entry:x}");
            Assert.Equal(entry + (endbr ? 4UL : 0), site.PatchAddress);
            Assert.InRange(site.Displaced.Length, EntryPatcher.JumpLength, EntryPatcher.JumpLength + 14);
            AssertSameEffect(DecodeAll(site.PatchAddress, site.Displaced), DecodeAll(relocatedAt, site.Relocated), site);
        }, iter: 2_000);
    }

    private static readonly Register[] Gprs =
    [
        Register.RAX, Register.RBX, Register.RCX, Register.RDX, Register.RSI, Register.RDI, Register.RBP,
        Register.R8, Register.R9, Register.R10, Register.R11, Register.R12, Register.R13, Register.R14, Register.R15,
    ];

    /// <summary>Straight-line code from a pool of prologue instructions (RIP-relative ones within ±1 GiB), then ret.</summary>
    private static byte[] Assemble(ulong entry, bool endbr, (int Kind, int A, int B, int Value)[] plan)
    {
        var instructions = new List<Instruction>();
        if (endbr)
        {
            instructions.Add(Instruction.Create(Code.Endbr64));
        }

        foreach (var (kind, a, b, value) in plan)
        {
            var target = (ulong)((long)entry + value);
            instructions.Add(kind switch
            {
                0 => Instruction.Create(Code.Push_r64, Gprs[a]),
                1 => Instruction.Create(Code.Mov_rm64_r64, Gprs[a], Gprs[b]),
                2 => Instruction.Create(Code.Sub_rm64_imm32, Register.RSP, value & 0xffff),
                3 => Instruction.Create(Code.Mov_rm64_r64, new MemoryOperand(Register.RSP, value % 0x80), Gprs[a]),
                4 => Instruction.Create(Code.Lea_r64_m, Gprs[a], new MemoryOperand(Register.RIP, (long)target)),
                5 => Instruction.Create(Code.Mov_r64_rm64, Gprs[a], new MemoryOperand(Register.RIP, (long)target)),
                6 => Instruction.Create(Code.Cmp_rm32_imm8, new MemoryOperand(Register.RIP, (long)target), b),
                _ => Instruction.Create(Code.Nopd),
            });
        }

        instructions.Add(Instruction.Create(Code.Retnq));
        var writer = new Bytes();
        var encoder = Encoder.Create(64, writer);
        var ip = entry;
        foreach (var i in instructions)
        {
            Assert.True(encoder.TryEncode(i, ip, out var length, out var error), error);
            ip += (ulong)length;
        }

        return [.. writer.Written];
    }

    private static RelocatedEntry Patchable(SiteAnalysis analysis, string what) =>
        analysis.Entry ?? throw new Xunit.Sdk.XunitException($"{what} refused: {analysis.Refusal}");

    /// <summary>Every instruction of <paramref name="bytes"/> decoded at <paramref name="ip"/>; none may be invalid.</summary>
    internal static List<Instruction> DecodeAll(ulong ip, byte[] bytes)
    {
        var decoder = Decoder.Create(64, new ByteArrayCodeReader(bytes));
        decoder.IP = ip;
        var all = new List<Instruction>();
        while (decoder.IP < ip + (ulong)bytes.Length)
        {
            var i = decoder.Decode();
            Assert.False(i.IsInvalid, $"invalid instruction at 0x{i.IP:x}");
            all.Add(i);
        }

        return all;
    }

    /// <summary>The same instructions, the map pointing at each copy, and every RIP-relative operand at the same address.</summary>
    private static void AssertSameEffect(List<Instruction> original, List<Instruction> relocated, RelocatedEntry site)
    {
        Assert.Equal(original.Count, relocated.Count);
        Assert.Equal(original.Count, site.Instructions.Count);
        for (var n = 0; n < original.Count; n++)
        {
            Assert.Equal(original[n].IP - site.PatchAddress, (ulong)site.Instructions[n].Original);
            Assert.Equal(relocated[n].IP - site.RelocatedAddress, (ulong)(site.Instructions[n].Relocated ?? -1));
            Assert.Equal(original[n].Code, relocated[n].Code);
            Assert.Equal(original[n].IsIPRelativeMemoryOperand, relocated[n].IsIPRelativeMemoryOperand);
            if (original[n].IsIPRelativeMemoryOperand)
            {
                Assert.Equal(original[n].IPRelativeMemoryAddress, relocated[n].IPRelativeMemoryAddress);
            }
            else
            {
                Assert.Equal(original[n].ToString(), relocated[n].ToString());
            }
        }
    }

    private sealed class Bytes : CodeWriter
    {
        public List<byte> Written { get; } = [];

        public override void WriteByte(byte value) => Written.Add(value);
    }
}
