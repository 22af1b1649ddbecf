using System.Buffers.Binary;
using static Interop;

namespace ProcHex.Backends.FreeBSD;

/// <summary>
/// A process is its pid and its start time (issue 17 item 3): ki_start of KERN_PROC_PID, in microseconds since the
/// epoch. A pid is reused once its process is reaped; the newcomer's start time differs.
/// </summary>
internal static class ProcessIdentity
{
    /// <summary>
    /// The kinfo_proc of <paramref name="pid"/> (KERN_PROC_PID), as long as the kernel made it, or null when there
    /// is no such process; callers check that it reaches the field they read.
    /// </summary>
    public static byte[]? Kinfo(IFreeBsdKernel kernel, int pid)
    {
        var kinfo = new byte[KinfoProc.Size];
        var length = (nuint)kinfo.Length;
        ReadOnlySpan<int> mib = [SysctlMib.CTL_KERN, SysctlMib.KERN_PROC, SysctlMib.KERN_PROC_PID, pid];
        return kernel.Sysctl(mib, kinfo, ref length, out _) == -1 ? null : kinfo[..(int)Math.Min(length, (nuint)kinfo.Length)];
    }

    /// <summary>The start time of the process <paramref name="pid"/> names now, or null when there is none.</summary>
    public static ulong? StartTime(IFreeBsdKernel kernel, int pid)
    {
        if (Kinfo(kernel, pid) is not { } kinfo || kinfo.Length < KinfoProc.StartOffset + 16)
        {
            return null;
        }

        var seconds = BinaryPrimitives.ReadUInt64LittleEndian(kinfo.AsSpan(KinfoProc.StartOffset));
        var microseconds = BinaryPrimitives.ReadUInt64LittleEndian(kinfo.AsSpan(KinfoProc.StartOffset + 8));
        return (seconds * 1_000_000) + microseconds;
    }

    /// <summary>True only when <paramref name="pid"/> names a process that started at another time.</summary>
    public static bool WasReplaced(IFreeBsdKernel kernel, int pid, ulong? startTime) =>
        startTime is { } known && StartTime(kernel, pid) is { } now && now != known;
}
