using System.Runtime.InteropServices;
using System.Text;
using ProcHex.Ports;

namespace ProcHex.Backends.FreeBSD;

/// <summary>One kinfo_vmentry record; FileId (kve_vn_fileid) and FileSystemId (kve_vn_fsid) identify the file.</summary>
internal readonly record struct VmMapEntry(
    ulong Start, ulong End, ulong Offset, int Type, int Protection, string Path, ulong FileId = 0, ulong FileSystemId = 0)
{
    public bool IsFile => Type == Interop.Kvme.KVME_TYPE_VNODE && Path.Length > 0;

    public bool IsExecutable => (Protection & Interop.Kvme.KVME_PROT_EXEC) != 0;
}

/// <summary>Reads a process's memory map with sysctl {CTL_KERN, KERN_PROC, KERN_PROC_VMMAP, pid}.</summary>
internal static class VmMap
{
    public static IReadOnlyList<VmMapEntry> Read(IFreeBsdKernel kernel, int pid)
    {
        ReadOnlySpan<int> mib = [Interop.SysctlMib.CTL_KERN, Interop.SysctlMib.KERN_PROC, Interop.SysctlMib.KERN_PROC_VMMAP, pid];
        var buffer = QueryGrowing(kernel, mib, pid, "KERN_PROC_VMMAP");
        return Parse(buffer);
    }

    /// <summary>The executable's path (KERN_PROC_PATHNAME), or null when the kernel cannot name it.</summary>
    public static string? ExecutablePath(IFreeBsdKernel kernel, int pid)
    {
        ReadOnlySpan<int> mib = [Interop.SysctlMib.CTL_KERN, Interop.SysctlMib.KERN_PROC, Interop.SysctlMib.KERN_PROC_PATHNAME, pid];
        try
        {
            var buffer = QueryGrowing(kernel, mib, pid, "KERN_PROC_PATHNAME");
            var end = Array.IndexOf(buffer, (byte)0);
            return Encoding.UTF8.GetString(buffer, 0, end < 0 ? buffer.Length : end);
        }
        catch (TracerException)
        {
            return null;
        }
    }

    /// <summary>
    /// Size query, then a buffer a third larger (as lib/libutil/kinfo_getvmmap.c does: the map can grow between
    /// the calls); ENOMEM means it grew more than that, so try again.
    /// </summary>
    internal static byte[] QueryGrowing(IFreeBsdKernel kernel, ReadOnlySpan<int> mib, int pid, string what)
    {
        for (var attempt = 0; attempt < 8; attempt++)
        {
            nuint length = 0;
            if (kernel.Sysctl(mib, [], ref length, out var errno) == -1)
            {
                throw PtraceCalls.Failure($"sysctl {what}", pid, errno);
            }

            var buffer = new byte[(int)length * 4 / 3 + 8];
            length = (nuint)buffer.Length;
            if (kernel.Sysctl(mib, buffer, ref length, out errno) == 0)
            {
                return buffer[..(int)length];
            }

            if (errno != Interop.Errno.ENOMEM)
            {
                throw PtraceCalls.Failure($"sysctl {what}", pid, errno);
            }
        }

        throw new TracerException($"sysctl {what} pid {pid}: the result kept growing");
    }

    /// <summary>Walks packed records by kve_structsize; a record shorter than the fixed part ends the walk.</summary>
    public static unsafe IReadOnlyList<VmMapEntry> Parse(ReadOnlySpan<byte> buffer)
    {
        var pathOffset = (int)Marshal.OffsetOf<Interop.KinfoVmEntry>(nameof(Interop.KinfoVmEntry.kve_path));
        var entries = new List<VmMapEntry>();
        var offset = 0;
        while (offset + pathOffset <= buffer.Length)
        {
            var record = buffer[offset..];
            var size = MemoryMarshal.Read<int>(record);
            if (size < pathOffset || size > record.Length)
            {
                break;
            }

            var fixedPart = new Interop.KinfoVmEntry();
            record[..pathOffset].CopyTo(new Span<byte>(&fixedPart, pathOffset));
            var pathBytes = record[pathOffset..size];
            var nul = pathBytes.IndexOf((byte)0);
            var path = Encoding.UTF8.GetString(nul < 0 ? pathBytes : pathBytes[..nul]);
            entries.Add(new VmMapEntry(
                fixedPart.kve_start, fixedPart.kve_end, fixedPart.kve_offset, fixedPart.kve_type, fixedPart.kve_protection, path,
                fixedPart.kve_vn_fileid, fixedPart.kve_type_spec));
            offset += size;
        }

        return entries;
    }
}
