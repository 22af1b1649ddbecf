namespace ProcHex.Elf.Tests;

/// <summary>Issue 17 item 4: the ELF header says which programs are not x86-64, and names what they are.</summary>
public sealed class ElfMachineTests
{
    [Theory]
    [InlineData(1, 1, 3, "ELF32 i386")]
    [InlineData(1, 1, 62, "x32 (ELF32 x86-64)")]
    [InlineData(2, 1, 183, "ELF64 aarch64")]
    [InlineData(1, 1, 40, "ELF32 arm")]
    [InlineData(2, 1, 243, "ELF64 riscv")]
    [InlineData(2, 2, 21, "ELF64 ppc64 big-endian")]
    [InlineData(2, 1, 4660, "ELF64 machine 4660")]
    [InlineData(9, 1, 62, "ELF x86-64")]
    public void A_foreign_header_is_named(byte elfClass, byte data, int machine, string expected)
    {
        var header = Header(elfClass, data, (ushort)machine);

        Assert.Equal(expected, ElfMachine.Foreign(header));
    }

    [Fact]
    public void The_machines_own_executables_are_x86_64()
    {
        Assert.Null(ElfMachine.Foreign(File.ReadAllBytes("/bin/true")));
        Assert.Null(ElfMachine.Foreign(Header(2, 1, 62)));
    }

    [Fact]
    public void What_is_no_ELF_is_left_to_the_kernel_and_a_cut_header_is_foreign()
    {
        Assert.Null(ElfMachine.Foreign("#!/bin/sh\nexit 0\n"u8));
        Assert.Null(ElfMachine.Foreign([]));
        Assert.Equal("a truncated ELF header", ElfMachine.Foreign(Header(2, 1, 62).AsSpan(0, 10)));
    }

    private static byte[] Header(byte elfClass, byte data, ushort machine)
    {
        var header = new byte[ElfMachine.HeaderBytes];
        byte[] ident = [0x7f, (byte)'E', (byte)'L', (byte)'F', elfClass, data, 1];
        ident.CopyTo(header, 0);
        header[16] = 2;
        (header[18], header[19]) = data == 2 ? ((byte)(machine >> 8), (byte)machine) : ((byte)machine, (byte)(machine >> 8));
        return header;
    }
}
