using System.Text;
using ProcHex.Ports;
using static Interop;

namespace ProcHex.Backends.FreeBSD;

/// <summary>
/// Refuses what is not a FreeBSD amd64 process (issue 17 item 4) before anything is written into it, by its ABI:
/// ki_emul of KERN_PROC_PID, the name of the sysentvec its image runs under ("FreeBSD ELF64"; an i386 program under
/// COMPAT_FREEBSD32 runs as "FreeBSD ELF32", a Linux one as "Linux ELF64").
/// </summary>
internal static class ArchitectureCheck
{
    private const string Native = "FreeBSD ELF64";

    /// <summary>What the process runs as when it is not native; null when it is, or when it cannot be read.</summary>
    public static string? Foreign(IFreeBsdKernel kernel, int pid)
    {
        if (ProcessIdentity.Kinfo(kernel, pid) is not { } kinfo || kinfo.Length < KinfoProc.EmulOffset + KinfoProc.EmulLength)
        {
            return null;
        }

        var field = kinfo.AsSpan(KinfoProc.EmulOffset, KinfoProc.EmulLength);
        var end = field.IndexOf((byte)0);
        var emulation = Encoding.ASCII.GetString(end < 0 ? field : field[..end]);
        return emulation switch
        {
            "" or Native => null,
            "FreeBSD ELF32" => "ELF32 i386",
            _ => emulation,
        };
    }

    /// <exception cref="ForeignArchitectureException">The process runs an image of another architecture or ABI.</exception>
    public static void RefuseProcess(IFreeBsdKernel kernel, int pid)
    {
        if (Foreign(kernel, pid) is { } architecture)
        {
            throw new ForeignArchitectureException(architecture);
        }
    }
}
