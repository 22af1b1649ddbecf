using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary><c>int sysctl(const int *name, u_int namelen, void *oldp, size_t *oldlenp, const void *newp, size_t newlen)</c> (sys/sys/sysctl.h).</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "sysctl", SetLastError = true)]
        internal static unsafe partial int Sysctl(int* name, uint nameLength, void* oldp, nuint* oldLength, void* newp, nuint newLength);
    }

    /// <summary>MIB names, sys/sys/sysctl.h: the memory map is {CTL_KERN, KERN_PROC, KERN_PROC_VMMAP, pid}.</summary>
    internal static class SysctlMib
    {
        internal const int CTL_KERN = 1;
        internal const int KERN_PROC = 14;
        internal const int KERN_PROC_VMMAP = 32;
        internal const int KERN_PROC_PATHNAME = 12;

        /// <summary>The auxiliary vector, an array of Elf64_Auxinfo {long a_type; long a_val} (freebsd-abi.md section 6).</summary>
        internal const int KERN_PROC_AUXV = 36;

        /// <summary>One struct kinfo_proc for the pid (sys/sys/sysctl.h); the BCL's Process class uses the same MIB.</summary>
        internal const int KERN_PROC_PID = 1;
    }

    /// <summary>Auxiliary vector types, sys/sys/elf_common.h.</summary>
    internal static class AuxType
    {
        internal const int AT_NULL = 0;

        /// <summary>Where the dynamic linker is mapped; 0 for a static program (lib/librtld_db/rtld_db.c reads it).</summary>
        internal const int AT_BASE = 7;
    }

    /// <summary>
    /// struct kinfo_vmentry, sys/sys/user.h: KINFO_VMENTRY_SIZE = 1160 on amd64 (freebsd-abi.md section 6). The
    /// kernel packs records for KERN_PROC_VMMAP (kve_structsize = offsetof(kve_path) + strlen + 1, rounded up to
    /// 8, sys/kern/kern_proc.c), so the buffer is walked by kve_structsize, never indexed as an array.
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct KinfoVmEntry
    {
        internal const int PATH_MAX = 1024;

        internal int kve_structsize;
        internal int kve_type;
        internal ulong kve_start;
        internal ulong kve_end;
        internal ulong kve_offset;
        internal ulong kve_vn_fileid;
        internal uint kve_vn_fsid_freebsd11;
        internal int kve_flags;
        internal int kve_resident;
        internal int kve_private_resident;
        internal int kve_protection;
        internal int kve_ref_count;
        internal int kve_shadow_count;
        internal int kve_vn_type;
        internal ulong kve_vn_size;
        internal uint kve_vn_rdev_freebsd11;
        internal ushort kve_vn_mode;
        internal ushort kve_status;
        internal ulong kve_type_spec;
        internal ulong kve_vn_rdev;
        internal fixed int _kve_ispare[8];
        internal fixed byte kve_path[PATH_MAX];
    }

    internal static class Kvme
    {
        internal const int KVME_TYPE_DEFAULT = 1;
        internal const int KVME_TYPE_VNODE = 2;
        internal const int KVME_PROT_READ = 0x1;
        internal const int KVME_PROT_WRITE = 0x2;
        internal const int KVME_PROT_EXEC = 0x4;
    }

    /// <summary>
    /// What the adapter reads of struct kinfo_proc (sys/sys/user.h, amd64; KINFO_PROC_SIZE 1088). Offsets: ki_structsize
    /// and ki_layout (8), eight pointers (to 72), ki_pid (72); after ki_ppid, ki_pgid, ki_tpgid, ki_sid, ki_tsid, ki_jobc,
    /// ki_spare_short1 and ki_tdev_freebsd11 comes ki_siglist at 104 (a 16-byte sigset_t: p_siglist, the signals pending
    /// for the process, kern_proc.c fill_kinfo_proc_only). Cross-checked with dotnet/runtime's kinfo_proc
    /// (Interop.Process.GetProcInfo.cs).
    /// </summary>
    internal static class KinfoProc
    {
        internal const int Size = 1088;
        internal const int PidOffset = 72;
        internal const int SiglistOffset = 104;

        /// <summary>
        /// ki_start, a struct timeval (tv_sec, tv_usec): after ki_sigmask, ki_sigignore, ki_sigcatch, the five ids,
        /// ki_ngroups, ki_groups[16], the six sizes, ki_xstat, ki_acflag, ki_pctcpu, four u_ints and ki_runtime.
        /// </summary>
        internal const int StartOffset = 336;

        /// <summary>ki_emul[KI_EMULNAMELEN + 1], the ABI's sysentvec name ("FreeBSD ELF64"), after ki_comm at 447.</summary>
        internal const int EmulOffset = 467;

        internal const int EmulLength = 17;
    }
}
