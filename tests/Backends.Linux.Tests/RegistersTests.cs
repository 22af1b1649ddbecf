using System.Runtime.InteropServices;
using CsCheck;

namespace ProcHex.Backends.Linux.Tests;

/// <summary>
/// Issue 16 item 1: Linux's <c>user_regs_struct</c> goes to the neutral x86-64 registers and back without losing a
/// bit, so emulating through the neutral form (the shared emulator) changes only what the instruction changed.
/// </summary>
public sealed class RegistersTests
{
    [Fact]
    [Trait("Spec", "S14")]
    public void User_regs_survive_the_round_trip_through_the_neutral_form()
    {
        Gen.Byte.Array[Marshal.SizeOf<Interop.UserRegs>()].Sample(bytes =>
        {
            var regs = MemoryMarshal.Read<Interop.UserRegs>(bytes);
            Assert.Equal(regs, Registers.FromNeutral(Registers.ToNeutral(regs), regs));
        });
    }

    [Fact]
    [Trait("Spec", "S14")]
    public void From_neutral_writes_the_neutral_registers_and_keeps_the_rest()
    {
        var original = new Interop.UserRegs { orig_rax = 59, fs_base = 0x7f00_0000_1000, rip = 0x1000, rsp = 0x8000 };
        var neutral = Registers.ToNeutral(original) with { Rip = 0x1001, Rsp = 0x7ff8, Rbp = 0x8000, Rflags = 0x246 };

        var back = Registers.FromNeutral(neutral, original);

        Assert.Equal((0x1001ul, 0x7ff8ul, 0x8000ul, 0x246ul), (back.rip, back.rsp, back.rbp, back.eflags));
        Assert.Equal((59ul, 0x7f00_0000_1000ul), (back.orig_rax, back.fs_base));
        Assert.Equal(neutral, Registers.ToNeutral(back));
    }
}
