using System.Runtime.InteropServices;

namespace ProcHex.Backends.Linux;

internal static partial class Interop
{
    /// <summary>What a create sets up between spawn and exec (issue 22 item 1): file actions and personality (limits: Interop.RLimit).</summary>
    internal static partial class Sys
    {
        internal const int O_WRONLY = 1;
        internal const int O_CREAT = 0x40;
        internal const int O_TRUNC = 0x200;
        internal const int O_APPEND = 0x400;

        /// <summary>glibc's posix_spawn_file_actions_t is 80 bytes on x86-64; the buffer is rounded up for safety.</summary>
        internal const int SpawnFileActionsSize = 256;

        /// <summary>personality(2): the argument that reads the persona without changing it.</summary>
        internal const uint PersonalityQuery = 0xffffffff;

        /// <summary>personality(2) flag: no address-space layout randomization for the next exec'd images.</summary>
        internal const uint ADDR_NO_RANDOMIZE = 0x0040000;

        [LibraryImport(Libraries.Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int OpenMode(string path, int flags, uint mode);

        [LibraryImport(Libraries.Libc, EntryPoint = "pipe2", SetLastError = true)]
        internal static unsafe partial int Pipe2(int* fds, int flags);

        [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawn_file_actions_init")]
        internal static unsafe partial int FileActionsInit(void* actions);

        [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawn_file_actions_destroy")]
        internal static unsafe partial int FileActionsDestroy(void* actions);

        [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawn_file_actions_adddup2")]
        internal static unsafe partial int FileActionsAddDup2(void* actions, int fd, int newFd);

        /// <summary>glibc 2.29 and later.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawn_file_actions_addchdir_np", StringMarshalling = StringMarshalling.Utf8)]
        internal static unsafe partial int FileActionsAddChdir(void* actions, string path);

        [LibraryImport(Libraries.Libc, EntryPoint = "personality", SetLastError = true)]
        internal static partial int Personality(nuint persona);
    }
}
