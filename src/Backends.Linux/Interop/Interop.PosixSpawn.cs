using System.Runtime.InteropServices;

namespace ProcHex.Backends.Linux;

internal static partial class Interop
{
    internal static partial class Sys
    {
        internal const short POSIX_SPAWN_SETSIGDEF = 0x04;
        internal const short POSIX_SPAWN_SETSIGMASK = 0x08;

        /// <summary>glibc's posix_spawnattr_t is 336 bytes on x86-64; the buffer is rounded up for safety.</summary>
        internal const int SpawnAttrSize = 512;

        /// <summary>sigset_t is 1024 bits in glibc.</summary>
        internal const int SigSetSize = 128;

        [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawn", StringMarshalling = StringMarshalling.Utf8)]
        internal static unsafe partial int PosixSpawn(int* pid, string path, void* fileActions, void* attributes, byte** argv, byte** envp);

        [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawnattr_init")]
        internal static unsafe partial int PosixSpawnAttrInit(void* attributes);

        [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawnattr_destroy")]
        internal static unsafe partial int PosixSpawnAttrDestroy(void* attributes);

        [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawnattr_setflags")]
        internal static unsafe partial int PosixSpawnAttrSetFlags(void* attributes, short flags);

        [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawnattr_setsigmask")]
        internal static unsafe partial int PosixSpawnAttrSetSigMask(void* attributes, void* mask);

        [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawnattr_setsigdefault")]
        internal static unsafe partial int PosixSpawnAttrSetSigDefault(void* attributes, void* signals);

        [LibraryImport(Libraries.Libc, EntryPoint = "sigemptyset")]
        internal static unsafe partial int SigEmptySet(void* set);

        [LibraryImport(Libraries.Libc, EntryPoint = "sigfillset")]
        internal static unsafe partial int SigFillSet(void* set);
    }
}
