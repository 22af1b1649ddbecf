using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary>
        /// <c>int posix_spawn(pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *,
        /// char *const argv[], char *const envp[])</c>. Returns an error number, not -1/errno. posix_spawnattr_t is
        /// a pointer to an opaque struct on FreeBSD (include/spawn.h), so it is passed as the address of an nint.
        /// </summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawn", StringMarshalling = StringMarshalling.Utf8)]
        internal static unsafe partial int PosixSpawn(int* pid, string path, nint fileActions, nint* attributes, nint* argv, nint* envp);

        [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawnattr_init")]
        internal static unsafe partial int PosixSpawnAttrInit(nint* attributes);

        [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawnattr_destroy")]
        internal static unsafe partial int PosixSpawnAttrDestroy(nint* attributes);

        [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawnattr_setflags")]
        internal static unsafe partial int PosixSpawnAttrSetFlags(nint* attributes, short flags);

        [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawnattr_setsigdefault")]
        internal static unsafe partial int PosixSpawnAttrSetSigDefault(nint* attributes, SigSet* signals);

        [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawnattr_setsigmask")]
        internal static unsafe partial int PosixSpawnAttrSetSigMask(nint* attributes, SigSet* signals);

        /// <summary>include/spawn.h. Assumed equal to glibc's (not in freebsd-abi.md): SETSIGDEF 0x10, SETSIGMASK 0x20.</summary>
        internal const short POSIX_SPAWN_SETSIGDEF = 0x10;
        internal const short POSIX_SPAWN_SETSIGMASK = 0x20;
    }
}
