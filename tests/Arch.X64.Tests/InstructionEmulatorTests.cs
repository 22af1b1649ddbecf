namespace ProcHex.Arch.X64.Tests;

/// <summary>
/// The emulator on its own (S14, issue 16 item 1): the refusals and each modelled instruction's effect on the neutral
/// registers. That the effects equal a real single-step is proven on Linux (Backends.Linux.Tests EmulatorTests).
/// </summary>
public sealed class InstructionEmulatorTests
{
    private static readonly X64Registers Start = new() { Rip = 0x1000, Rsp = 0x7ff0, Rbp = 0x8000, Rdi = 0x11223344_55667788, Rbx = 7, Rflags = 0x202 };

    [Fact]
    [Trait("Spec", "S14")]
    public void Instructions_that_are_not_modelled_are_refused()
    {
        var regs = new X64Registers { Rip = 0x1000, Rsp = 0x7000 };
        Assert.False(InstructionEmulator.TryEmulate(ref regs, [0xE8, 0, 0, 0, 0], out _)); // call
        Assert.False(InstructionEmulator.TryEmulate(ref regs, [0x48, 0x8B, 0x05, 0, 0, 0, 0], out _)); // mov rax,[rip]
        Assert.False(InstructionEmulator.TryEmulate(ref regs, [0xF0, 0x48, 0x83, 0x05, 0, 0, 0, 0, 1], out _)); // lock add
        Assert.False(InstructionEmulator.TryEmulate(ref regs, [0x0F, 0x05], out _)); // syscall
        Assert.False(InstructionEmulator.TryEmulate(ref regs, [0x48, 0x83], out _)); // cut short
        Assert.Equal(0x1000ul, regs.Rip);
    }

    [Fact]
    [Trait("Spec", "S14")]
    public void Push_rbp_moves_rsp_down_and_stores_rbp()
    {
        var regs = Start;
        Assert.True(InstructionEmulator.TryEmulate(ref regs, [0x55], out var write));
        Assert.Equal(Start with { Rip = 0x1001, Rsp = 0x7fe8 }, regs);
        Assert.Equal(new MemoryWrite(0x7fe8, 0x8000, 8), write);
    }

    [Theory]
    [Trait("Issue", "19.1")]
    [InlineData(new byte[] { 0x8D, 0x44, 0x7F, 0x01 }, 0x336699ul, 0x1004)] // lea eax,[rdi+rdi*2+1] (gcc -O2's x*3+1): the low half, zero-extended
    [InlineData(new byte[] { 0x48, 0x8D, 0x05, 0x10, 0x00, 0x00, 0x00 }, 0x1017ul, 0x1007)] // lea rax,[rip+0x10]
    [InlineData(new byte[] { 0x48, 0x8D, 0x04, 0x9F }, 0x11223344_556677a4ul, 0x1004)] // lea rax,[rdi+rbx*4]
    [InlineData(new byte[] { 0x48, 0x8D, 0x04, 0x25, 0x00, 0x20, 0x00, 0x00 }, 0x2000ul, 0x1008)] // lea rax,[0x2000]
    public void Lea_computes_the_address_into_the_register_and_touches_nothing_else(byte[] code, ulong rax, ulong next)
    {
        var regs = Start;
        Assert.True(InstructionEmulator.TryEmulate(ref regs, code, out var write));
        Assert.Equal(Start with { Rip = next, Rax = rax }, regs);
        Assert.Null(write);
    }

    [Fact]
    [Trait("Issue", "19.1")]
    public void Lea_with_a_segment_or_32_bit_address_registers_is_refused()
    {
        var regs = Start;
        Assert.False(InstructionEmulator.TryEmulate(ref regs, [0x64, 0x48, 0x8D, 0x04, 0x25, 0, 0, 0, 0], out _)); // lea rax,fs:[0]
        Assert.False(InstructionEmulator.TryEmulate(ref regs, [0x67, 0x48, 0x8D, 0x04, 0x1F], out _)); // lea rax,[edi+ebx]
        Assert.Equal(Start, regs);
    }

    [Fact]
    [Trait("Spec", "S14")]
    public void Mov_rbp_rsp_copies_the_register()
    {
        var regs = Start;
        Assert.True(InstructionEmulator.TryEmulate(ref regs, [0x48, 0x89, 0xE5], out var write));
        Assert.Equal(Start with { Rip = 0x1003, Rbp = 0x7ff0 }, regs);
        Assert.Null(write);
    }

    [Fact]
    [Trait("Spec", "S14")]
    public void Mov_edi_to_the_red_zone_stores_four_bytes()
    {
        var regs = Start;
        Assert.True(InstructionEmulator.TryEmulate(ref regs, [0x89, 0x7C, 0x24, 0xFC], out var write));
        Assert.Equal(Start with { Rip = 0x1004 }, regs);
        Assert.Equal(new MemoryWrite(0x7fec, 0x11223344_55667788, 4), write);
        Assert.Equal(new byte[] { 0x88, 0x77, 0x66, 0x55 }, write!.Value.Bytes(new byte[8]).ToArray());
    }

    [Fact]
    [Trait("Spec", "S14")]
    public void Sub_rsp_imm_computes_the_result_and_the_flags()
    {
        var regs = Start;
        Assert.True(InstructionEmulator.TryEmulate(ref regs, [0x48, 0x83, 0xEC, 0x20], out _));
        // 0x7ff0 - 0x20 = 0x7fd0: no carry, not zero, positive, PF from 0xd0 (three bits set: odd, so clear).
        Assert.Equal(Start with { Rip = 0x1004, Rsp = 0x7fd0, Rflags = 0x202 }, regs);

        regs = Start with { Rsp = 0x10 };
        Assert.True(InstructionEmulator.TryEmulate(ref regs, [0x48, 0x83, 0xEC, 0x10], out _));
        const ulong ZfPf = (1 << 6) | (1 << 2);
        Assert.Equal(0x202ul | ZfPf, regs.Rflags);
        Assert.Equal(0ul, regs.Rsp);
    }

    [Fact]
    [Trait("Spec", "S14")]
    public void Xor_eax_eax_zeroes_and_sets_zf_pf()
    {
        var regs = Start with { Rax = 0xffff_ffff_ffff_ffff, Rflags = 0x202 | 1 | (1 << 11) };
        Assert.True(InstructionEmulator.TryEmulate(ref regs, [0x31, 0xC0], out _));
        Assert.Equal(0ul, regs.Rax);
        Assert.Equal(0x202ul | (1 << 6) | (1 << 2), regs.Rflags);
    }

    [Fact]
    [Trait("Spec", "S14")]
    public void Endbr64_and_nops_only_move_rip()
    {
        foreach (var code in new byte[][] { [0xF3, 0x0F, 0x1E, 0xFA], [0x90], [0x66, 0x90], [0x0F, 0x1F, 0x44, 0x00, 0x00] })
        {
            var regs = Start;
            Assert.True(InstructionEmulator.TryEmulate(ref regs, code, out var write));
            Assert.Equal(Start with { Rip = 0x1000 + (ulong)code.Length }, regs);
            Assert.Null(write);
        }
    }
}
