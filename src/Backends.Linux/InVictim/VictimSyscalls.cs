namespace ProcHex.Backends.Linux.InVictim;

/// <summary>
/// The x86-64 system calls and flags the tracer makes the victim run (arch/x86/entry/syscalls/syscall_64.tbl,
/// include/uapi/asm-generic/mman-common.h, include/uapi/linux/memfd.h): numbers for the victim's kernel, not P/Invoke.
/// </summary>
internal static class VictimSyscalls
{
    public const long Close = 3;
    public const long Mmap = 9;
    public const long Munmap = 11;
    public const long Madvise = 28;
    public const long Ftruncate = 77;
    public const long MemfdCreate = 319;

    public const ulong ProtRead = 0x1;
    public const ulong ProtWrite = 0x2;
    public const ulong ProtExec = 0x4;
    public const ulong MapShared = 0x01;
    public const ulong MapPrivate = 0x02;
    public const ulong MapAnonymous = 0x20;
    public const ulong MapFixedNoReplace = 0x100000;
    public const ulong MadvDontFork = 10;
    public const ulong MfdCloexec = 0x1;

    /// <summary>A raw return in [-4095, -1] is -errno (the kernel's IS_ERR_VALUE).</summary>
    public static bool IsError(long result, out int errno)
    {
        errno = result is >= -4095 and < 0 ? (int)-result : 0;
        return errno != 0;
    }
}
