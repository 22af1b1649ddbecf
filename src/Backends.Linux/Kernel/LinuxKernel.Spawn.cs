using System.Runtime.InteropServices;
using System.Text;
using static ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux;

/// <summary>Starting the victim without a managed fork: posix_spawn with its file actions, descriptors, pipes and limits.</summary>
internal sealed partial class LinuxKernel
{
    /// <remarks>
    /// Never fork from managed code: glibc's posix_spawn uses clone(CLONE_VM | CLONE_VFORK) and execs at once, so no
    /// managed code runs in the child. The file actions (chdir, dup2) run in that child between clone and exec, and a
    /// failing one is posix_spawn's return value, the child already reaped by glibc.
    /// </remarks>
    public unsafe int PosixSpawn(string path, IReadOnlyList<string> argv, IReadOnlyList<string> envp, SpawnSetup setup, out int pid)
    {
        var blocks = new List<nint>();
        var actions = stackalloc byte[SpawnFileActionsSize];
        _ = FileActionsInit(actions);
        try
        {
            if (AddFileActions(actions, setup) is var actionError and not 0)
            {
                pid = 0;
                return actionError;
            }

            var argvArray = ToCArray(argv, blocks);
            var envArray = ToCArray(envp, blocks);
            var attributes = stackalloc byte[SpawnAttrSize];
            var mask = stackalloc byte[SigSetSize];
            var defaults = stackalloc byte[SigSetSize];
            _ = PosixSpawnAttrInit(attributes);

            // The persona is per task and a clone inherits it, so ADDR_NO_RANDOMIZE set on this (owner) thread just
            // before posix_spawn reaches the child and survives its exec; restored at once, so the owner's later
            // children (other victims, its wake process) are randomized again. Nothing else runs on the owner thread
            // in between.
            var persona = setup.NoRandomize ? Personality(PersonalityQuery) : -1;
            if (setup.NoRandomize && (persona == -1 || Personality((nuint)(uint)persona | ADDR_NO_RANDOMIZE) == -1))
            {
                pid = 0;
                _ = PosixSpawnAttrDestroy(attributes);
                return LastErrno;
            }

            try
            {
                // The runtime ignores SIGPIPE and blocks signals on some threads; an ignored disposition and the
                // mask survive exec, so a victim would inherit them. Reset both, as Process.Start does.
                _ = SigEmptySet(mask);
                _ = SigFillSet(defaults);
                _ = PosixSpawnAttrSetSigMask(attributes, mask);
                _ = PosixSpawnAttrSetSigDefault(attributes, defaults);
                _ = PosixSpawnAttrSetFlags(attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
                int child;
                var error = Interop.Sys.PosixSpawn(&child, path, actions, attributes, (byte**)argvArray, (byte**)envArray);
                pid = error == 0 ? child : 0;
                return error;
            }
            finally
            {
                if (setup.NoRandomize)
                {
                    _ = Personality((nuint)(uint)persona);
                }

                _ = PosixSpawnAttrDestroy(attributes);
            }
        }
        finally
        {
            _ = FileActionsDestroy(actions);
            foreach (var block in blocks)
            {
                Marshal.FreeHGlobal(block);
            }
        }
    }

    private static unsafe int AddFileActions(void* actions, SpawnSetup setup)
    {
        ReadOnlySpan<int> descriptors = [setup.Input, setup.Output, setup.Error];
        for (var target = 0; target < descriptors.Length; target++)
        {
            // dup2 clears O_CLOEXEC on the copy: only 0, 1 and 2 reach the program, never the originals.
            if (descriptors[target] >= 0 && FileActionsAddDup2(actions, descriptors[target], target) is var error and not 0)
            {
                return error;
            }
        }

        return setup.WorkingDirectory is { } dir ? FileActionsAddChdir(actions, dir) : 0;
    }

    public int OpenFile(string path, int flags, out int errno)
    {
        var fd = OpenMode(path, flags | O_CLOEXEC, 0x1b6); // 0666, less the umask
        errno = fd == -1 ? LastErrno : 0;
        return fd;
    }

    public unsafe int Pipe(out int readEnd, out int writeEnd)
    {
        var fds = stackalloc int[2];
        if (Pipe2(fds, O_CLOEXEC) == -1)
        {
            readEnd = writeEnd = -1;
            return LastErrno;
        }

        (readEnd, writeEnd) = (fds[0], fds[1]);
        return 0;
    }

    public void Close(int fd) => _ = Interop.Sys.Close(fd);

    public unsafe int SetResourceLimit(int pid, int resource, ulong soft, ulong hard)
    {
        var limit = stackalloc ulong[2] { soft, hard };
        return PrLimit(pid, resource, limit, null) == -1 ? LastErrno : 0;
    }

    private static unsafe nint ToCArray(IReadOnlyList<string> strings, List<nint> blocks)
    {
        var array = Marshal.AllocHGlobal((strings.Count + 1) * sizeof(nint));
        blocks.Add(array);
        var slots = (nint*)array;
        for (var i = 0; i < strings.Count; i++)
        {
            var bytes = Encoding.UTF8.GetBytes(strings[i]);
            var text = Marshal.AllocHGlobal(bytes.Length + 1);
            blocks.Add(text);
            Marshal.Copy(bytes, 0, text, bytes.Length);
            ((byte*)text)[bytes.Length] = 0;
            slots[i] = text;
        }

        slots[strings.Count] = 0;
        return array;
    }

    public int Access(string path, int mode) => Interop.Sys.Access(path, mode) == 0 ? 0 : LastErrno;
}
