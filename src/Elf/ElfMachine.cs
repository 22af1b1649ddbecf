using System.Buffers.Binary;
using System.Globalization;

namespace ProcHex.Elf;

/// <summary>
/// What an executable's ELF header says it runs on, as far as ProcHex cares: x86-64 (ELF64, little-endian,
/// EM_X86_64) is ours; anything else is named so a refusal can say what it met (issue 17 item 4).
/// </summary>
public static class ElfMachine
{
    private const byte ELFCLASS32 = 1;
    private const byte ELFDATA2MSB = 2;
    private const ushort EM_X86_64 = 62;

    /// <summary>The bytes <see cref="Foreign"/> needs: e_ident, e_type and e_machine.</summary>
    public const int HeaderBytes = 20;

    /// <summary>
    /// Null when <paramref name="header"/> is an x86-64 ELF64 image, or no ELF at all (a script: its interpreter
    /// is what runs, and the kernel has the last word); else what it is: "ELF32 i386", "x32 (ELF32 x86-64)",
    /// "ELF64 aarch64", "ELF32 machine 4660"...
    /// </summary>
    public static string? Foreign(ReadOnlySpan<byte> header)
    {
        if (header.Length < 4 || !header[..4].SequenceEqual((ReadOnlySpan<byte>)[0x7f, (byte)'E', (byte)'L', (byte)'F']))
        {
            return null;
        }

        if (header.Length < HeaderBytes)
        {
            return "a truncated ELF header";
        }

        var bits = header[4] == ELFCLASS32 ? 32 : header[4] == ElfConstants.ELFCLASS64 ? 64 : 0;
        var bigEndian = header[5] == ELFDATA2MSB;
        var machine = bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(header[18..]) : BinaryPrimitives.ReadUInt16LittleEndian(header[18..]);
        if (bits == 64 && !bigEndian && machine == EM_X86_64)
        {
            return null;
        }

        var name = machine == EM_X86_64 && bits == 32 ? "x32 (ELF32 x86-64)" : $"ELF{(bits == 0 ? "" : bits.ToString(CultureInfo.InvariantCulture))} {Name(machine)}";
        return bigEndian ? name + " big-endian" : name;
    }

    /// <summary>e_machine values of elf.h, under the names <c>uname -m</c> gives.</summary>
    private static string Name(ushort machine) => machine switch
    {
        2 => "sparc",
        3 => "i386",
        8 => "mips",
        20 => "ppc",
        21 => "ppc64",
        22 => "s390",
        40 => "arm",
        43 => "sparc64",
        50 => "ia64",
        62 => "x86-64",
        183 => "aarch64",
        243 => "riscv",
        258 => "loongarch",
        _ => "machine " + machine.ToString(CultureInfo.InvariantCulture),
    };
}
