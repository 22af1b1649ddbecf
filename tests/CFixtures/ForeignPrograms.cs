using System.Buffers.Binary;

namespace ProcHex.CFixtures;

/// <summary>
/// Programs of other architectures (issue 17 item 4), written byte by byte beside the compiled fixtures: no cross
/// compiler or gcc-multilib needed. Each is a static ELF with one PT_LOAD segment.
/// </summary>
public static class ForeignPrograms
{
    /// <summary>An ELF32 i386 program that calls pause() forever: it runs where the kernel has IA32 emulation.</summary>
    public const string I386 = "foreign-i386";

    /// <summary>An x32 program (ELFCLASS32, EM_X86_64): most kernels refuse to run it (no CONFIG_X86_X32_ABI).</summary>
    public const string X32 = "foreign-x32";

    /// <summary>An ELF64 aarch64 program: no x86-64 kernel runs it.</summary>
    public const string Aarch64 = "foreign-aarch64";

    /// <summary>A #! script whose interpreter is <see cref="I386"/>: the file is no ELF, the image that runs is i386.</summary>
    public const string I386Script = "foreign-i386-script";

    private static readonly Lazy<string> Written = new(WriteAll, LazyThreadSafetyMode.ExecutionAndPublication);

    public static string PathOf(string name) => Path.Combine(Written.Value, name);

    private static readonly Lazy<bool> I386Runs = new(ProbeI386, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>
    /// Whether this kernel runs <see cref="I386"/> (IA32 emulation built in and not switched off: some VM kernels have
    /// none, and exec fails with ENOEXEC). Where it does not, no i386 process can exist, and what is tested is the
    /// exec's failure instead.
    /// </summary>
    public static bool KernelRunsI386 => I386Runs.Value;

    private static bool ProbeI386()
    {
        try
        {
            using var process = System.Diagnostics.Process.Start(PathOf(I386))!;
            process.Kill();
            process.WaitForExit();
            return true;
        }
        catch (System.ComponentModel.Win32Exception e) when (e.NativeErrorCode == 8) // ENOEXEC
        {
            return false;
        }
    }

    private static string WriteAll()
    {
        var dir = FixturePrograms.Dir;

        // mov eax, 29 (pause); int 0x80; jmp back to the mov.
        byte[] pauseLoop = [0xb8, 0x1d, 0x00, 0x00, 0x00, 0xcd, 0x80, 0xeb, 0xf7];
        Write(dir, I386, Elf32(machine: 3, pauseLoop));
        Write(dir, X32, Elf32(machine: 62, [0xeb, 0xfe]));
        Write(dir, Aarch64, Elf64(machine: 183, [0x00, 0x00, 0x00, 0x14])); // b . (branch to itself)
        File.WriteAllText(Path.Combine(dir, I386Script), $"#!{Path.Combine(dir, I386)}\n");
        MakeExecutable(Path.Combine(dir, I386Script));
        return dir;
    }

    private static void Write(string dir, string name, byte[] image)
    {
        var path = Path.Combine(dir, name);
        File.WriteAllBytes(path, image);
        MakeExecutable(path);
    }

    private static void MakeExecutable(string path)
    {
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, (UnixFileMode)0b111_101_101);
        }
    }

    /// <summary>Elf32_Ehdr (52 bytes), one Elf32_Phdr (32 bytes), then the code, loaded R+X at 0x08048000.</summary>
    private static byte[] Elf32(ushort machine, byte[] code)
    {
        const uint Base = 0x08048000;
        const int Header = 52, Phdr = 32;
        var image = new byte[Header + Phdr + code.Length];
        var span = image.AsSpan();
        Ident(span, elfClass: 1);
        BinaryPrimitives.WriteUInt16LittleEndian(span[16..], 2); // e_type ET_EXEC
        BinaryPrimitives.WriteUInt16LittleEndian(span[18..], machine);
        BinaryPrimitives.WriteUInt32LittleEndian(span[20..], 1); // e_version
        BinaryPrimitives.WriteUInt32LittleEndian(span[24..], Base + Header + Phdr); // e_entry
        BinaryPrimitives.WriteUInt32LittleEndian(span[28..], Header); // e_phoff
        BinaryPrimitives.WriteUInt16LittleEndian(span[40..], Header); // e_ehsize
        BinaryPrimitives.WriteUInt16LittleEndian(span[42..], Phdr); // e_phentsize
        BinaryPrimitives.WriteUInt16LittleEndian(span[44..], 1); // e_phnum
        var ph = span[Header..];
        BinaryPrimitives.WriteUInt32LittleEndian(ph, 1); // PT_LOAD, p_offset 0
        BinaryPrimitives.WriteUInt32LittleEndian(ph[8..], Base); // p_vaddr
        BinaryPrimitives.WriteUInt32LittleEndian(ph[12..], Base); // p_paddr
        BinaryPrimitives.WriteUInt32LittleEndian(ph[16..], (uint)image.Length); // p_filesz
        BinaryPrimitives.WriteUInt32LittleEndian(ph[20..], (uint)image.Length); // p_memsz
        BinaryPrimitives.WriteUInt32LittleEndian(ph[24..], 5); // PF_R | PF_X
        BinaryPrimitives.WriteUInt32LittleEndian(ph[28..], 0x1000); // p_align
        code.CopyTo(span[(Header + Phdr)..]);
        return image;
    }

    /// <summary>Elf64_Ehdr (64 bytes), one Elf64_Phdr (56 bytes), then the code, loaded R+X at 0x400000.</summary>
    private static byte[] Elf64(ushort machine, byte[] code)
    {
        const ulong Base = 0x400000;
        const int Header = 64, Phdr = 56;
        var image = new byte[Header + Phdr + code.Length];
        var span = image.AsSpan();
        Ident(span, elfClass: 2);
        BinaryPrimitives.WriteUInt16LittleEndian(span[16..], 2);
        BinaryPrimitives.WriteUInt16LittleEndian(span[18..], machine);
        BinaryPrimitives.WriteUInt32LittleEndian(span[20..], 1);
        BinaryPrimitives.WriteUInt64LittleEndian(span[24..], Base + Header + Phdr);
        BinaryPrimitives.WriteUInt64LittleEndian(span[32..], Header);
        BinaryPrimitives.WriteUInt16LittleEndian(span[52..], Header);
        BinaryPrimitives.WriteUInt16LittleEndian(span[54..], Phdr);
        BinaryPrimitives.WriteUInt16LittleEndian(span[56..], 1);
        var ph = span[Header..];
        BinaryPrimitives.WriteUInt32LittleEndian(ph, 1);
        BinaryPrimitives.WriteUInt32LittleEndian(ph[4..], 5);
        BinaryPrimitives.WriteUInt64LittleEndian(ph[16..], Base);
        BinaryPrimitives.WriteUInt64LittleEndian(ph[24..], Base);
        BinaryPrimitives.WriteUInt64LittleEndian(ph[32..], (ulong)image.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(ph[40..], (ulong)image.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(ph[48..], 0x1000);
        code.CopyTo(span[(Header + Phdr)..]);
        return image;
    }

    private static void Ident(Span<byte> image, byte elfClass)
    {
        ((ReadOnlySpan<byte>)[0x7f, (byte)'E', (byte)'L', (byte)'F', elfClass, 1, 1]).CopyTo(image);
    }
}
