using System.Runtime.InteropServices;

namespace ProcHex.Backends.FreeBSD;

/// <summary>The auxiliary vector through sysctl {CTL_KERN, KERN_PROC, KERN_PROC_AUXV, pid}, as librtld_db's rd_reset reads it.</summary>
internal static class Auxv
{
    /// <summary>
    /// AT_BASE: where the dynamic linker is mapped, 0 for a static program. Entries are Elf64_Auxinfo
    /// {long a_type; long a_val} (sys/x86/include/elf.h), ended by AT_NULL.
    /// </summary>
    /// <exception cref="Ports.TracerException">The vector cannot be read (the process is gone, or not ours to see).</exception>
    public static ulong InterpreterBase(IFreeBsdKernel kernel, int pid)
    {
        ReadOnlySpan<int> mib = [Interop.SysctlMib.CTL_KERN, Interop.SysctlMib.KERN_PROC, Interop.SysctlMib.KERN_PROC_AUXV, pid];
        var pairs = MemoryMarshal.Cast<byte, long>(VmMap.QueryGrowing(kernel, mib, pid, "KERN_PROC_AUXV"));
        for (var i = 0; i + 1 < pairs.Length && pairs[i] != Interop.AuxType.AT_NULL; i += 2)
        {
            if (pairs[i] == Interop.AuxType.AT_BASE)
            {
                return (ulong)pairs[i + 1];
            }
        }

        return 0;
    }
}
