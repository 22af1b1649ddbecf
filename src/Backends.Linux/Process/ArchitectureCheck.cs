using ProcHex.Elf;
using ProcHex.Ports;

namespace ProcHex.Backends.Linux;

/// <summary>
/// Refuses what is not x86-64 (issue 17 item 4) before anything is written into it: the emulator, the register
/// layout and the r_debug walker are all 64-bit x86. A program is judged by its file's ELF header before it is
/// spawned (the kernel would refuse aarch64 or, without CONFIG_X86_X32_ABI, x32 with a bare "Exec format error"),
/// and a process by /proc/PID/exe, which names the image it runs whatever its path was (a #! script's interpreter,
/// an exec chain).
/// </summary>
internal static class ArchitectureCheck
{
    /// <exception cref="ForeignArchitectureException">The file is an ELF image of another architecture.</exception>
    public static void RefuseFile(ReadOnlySpan<byte> head)
    {
        if (ElfMachine.Foreign(head) is { } architecture)
        {
            throw new ForeignArchitectureException(architecture);
        }
    }

    /// <summary>What the process runs when it is not x86-64; null when it is, or when its image cannot be read.</summary>
    public static string? Foreign(ILinuxKernel kernel, int pid)
    {
        try
        {
            return ElfMachine.Foreign(kernel.ReadExeHeader(pid));
        }
        catch (IOException)
        {
            // Gone, or no image (a kernel thread): what follows says so in its own words.
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            // Not ours to read: the seize fails for the same reason, and says it.
            return null;
        }
    }

    /// <exception cref="ForeignArchitectureException">The process runs an image of another architecture.</exception>
    public static void RefuseProcess(ILinuxKernel kernel, int pid)
    {
        if (Foreign(kernel, pid) is { } architecture)
        {
            throw new ForeignArchitectureException(architecture);
        }
    }
}
