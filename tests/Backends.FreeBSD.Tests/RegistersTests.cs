using System.Runtime.InteropServices;
using CsCheck;

namespace ProcHex.Backends.FreeBSD.Tests;

/// <summary>
/// Issue 16 item 1: FreeBSD's <c>struct reg</c> goes to the neutral x86-64 registers and back without losing a bit,
/// so emulating through the neutral form (the shared emulator) changes only what the instruction changed.
/// </summary>
public sealed class RegistersTests
{
    [Fact]
    [Trait("Spec", "S14")]
    public void Struct_reg_survives_the_round_trip_through_the_neutral_form()
    {
        Gen.Byte.Array[Marshal.SizeOf<Interop.Reg>()].Sample(bytes =>
        {
            var regs = MemoryMarshal.Read<Interop.Reg>(bytes);
            Assert.Equal(regs, Registers.FromNeutral(Registers.ToNeutral(regs), regs));
        });
    }

    [Fact]
    [Trait("Spec", "S14")]
    public void From_neutral_writes_the_neutral_registers_and_keeps_the_rest()
    {
        var original = new Interop.Reg { r_trapno = 3, r_fs = 0x13, r_rip = 0x1000, r_rsp = 0x8000 };
        var neutral = Registers.ToNeutral(original) with { Rip = 0x1001, Rsp = 0x7ff8, Rbp = 0x8000, Rflags = 0x246 };

        var back = Registers.FromNeutral(neutral, original);

        Assert.Equal((0x1001L, 0x7ff8L, 0x8000L, 0x246L), (back.r_rip, back.r_rsp, back.r_rbp, back.r_rflags));
        Assert.Equal((3u, (ushort)0x13), (back.r_trapno, back.r_fs));
        Assert.Equal(neutral, Registers.ToNeutral(back));
    }
}
