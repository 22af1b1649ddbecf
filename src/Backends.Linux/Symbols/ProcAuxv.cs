using System.Buffers.Binary;

namespace ProcHex.Backends.Linux.Symbols;

/// <summary>
/// What the kernel told the program at exec in its auxiliary vector (/proc/PID/auxv): where the executable's
/// program headers and entry point are, where the dynamic linker and the vDSO were put.
/// </summary>
/// <param name="Entry">AT_ENTRY: the executable's entry point (its _start), already relocated.</param>
/// <param name="InterpreterBase">AT_BASE: the dynamic linker's load address; 0 for a statically linked program.</param>
/// <param name="ProgramHeaders">AT_PHDR: the executable's program headers in memory.</param>
/// <param name="ProgramHeaderCount">AT_PHNUM.</param>
/// <param name="VdsoBase">AT_SYSINFO_EHDR: the vDSO's ELF header; 0 when the kernel maps none.</param>
internal readonly record struct ProcAuxv(ulong Entry, ulong InterpreterBase, ulong ProgramHeaders, ulong ProgramHeaderCount, ulong VdsoBase)
{
    /// <summary>The auxiliary vector's terminator.</summary>
    public const ulong AT_NULL = 0;
    /// <summary>Where the executable's program headers are mapped.</summary>
    public const ulong AT_PHDR = 3;
    /// <summary>How many program headers the executable has.</summary>
    public const ulong AT_PHNUM = 5;
    /// <summary>The dynamic linker's load address (0 for a static executable).</summary>
    public const ulong AT_BASE = 7;
    /// <summary>The executable's entry point, as loaded.</summary>
    public const ulong AT_ENTRY = 9;
    /// <summary>The CPU feature bits the kernel reports.</summary>
    public const ulong AT_HWCAP = 16;
    /// <summary>Where the kernel mapped the vDSO.</summary>
    public const ulong AT_SYSINFO_EHDR = 33;

    /// <summary>More entries than any kernel writes (about 30): a bound, not a guess.</summary>
    private const int MaxEntries = 1024;

    /// <summary>AT_HWCAP: what gdb passes a GNU indirect function's resolver as its first argument.</summary>
    public ulong Hwcap { get; init; }

    /// <summary>Reads /proc/PID/auxv (needs the same access as ptrace-reading the process).</summary>
    /// <exception cref="IOException">The process is gone or the file is not readable.</exception>
    /// <exception cref="UnauthorizedAccessException">Not allowed to read it.</exception>
    public static ProcAuxv Read(int pid) => Parse(LinuxKernel.Instance.ReadAuxv(pid));

    /// <summary>Reads /proc/PID/auxv through <paramref name="kernel"/>, a failure as a port error.</summary>
    /// <exception cref="Ports.TracerException">The vector cannot be read (the process is gone, or not ours to see).</exception>
    internal static ProcAuxv ReadOrThrow(ILinuxKernel kernel, int pid)
    {
        try
        {
            return Parse(kernel.ReadAuxv(pid));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new Ports.TracerException($"cannot read the auxiliary vector of pid {pid}: {e.Message}", kernel.State(pid) is null ? Ports.TracerErrorKind.Gone : Ports.TracerErrorKind.Failed, 0, e);
        }
    }

    /// <summary>Parses 64-bit (type, value) pairs up to AT_NULL or the end of the bytes.</summary>
    public static ProcAuxv Parse(ReadOnlySpan<byte> bytes)
    {
        ulong entry = 0, interpreter = 0, phdr = 0, phnum = 0, vdso = 0, hwcap = 0;
        for (var i = 0; i + 16 <= bytes.Length && i / 16 < MaxEntries; i += 16)
        {
            var type = BinaryPrimitives.ReadUInt64LittleEndian(bytes[i..]);
            var value = BinaryPrimitives.ReadUInt64LittleEndian(bytes[(i + 8)..]);
            switch (type)
            {
                case AT_NULL:
                    return new ProcAuxv(entry, interpreter, phdr, phnum, vdso) { Hwcap = hwcap };
                case AT_ENTRY:
                    entry = value;
                    break;
                case AT_BASE:
                    interpreter = value;
                    break;
                case AT_PHDR:
                    phdr = value;
                    break;
                case AT_PHNUM:
                    phnum = value;
                    break;
                case AT_SYSINFO_EHDR:
                    vdso = value;
                    break;
                case AT_HWCAP:
                    hwcap = value;
                    break;
                default:
                    break;
            }
        }

        return new ProcAuxv(entry, interpreter, phdr, phnum, vdso) { Hwcap = hwcap };
    }
}
