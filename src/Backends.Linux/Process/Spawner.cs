using ProcHex.Ports;
using System.Runtime.InteropServices;
using System.Text;

namespace ProcHex.Backends.Linux;

/// <summary>
/// posix_spawn with a clean signal state. Never fork from managed code: glibc's posix_spawn uses
/// clone(CLONE_VM | CLONE_VFORK) and execs at once, so no managed code runs in the child.
/// </summary>
internal static class Spawner
{
    /// <summary>Starts <paramref name="path"/> as a child of the calling thread; returns its pid.</summary>
    /// <exception cref="ProcessStartException">posix_spawn failed.</exception>
    public static unsafe int Spawn(string path, IReadOnlyList<string> argv, IReadOnlyList<string> envp)
    {
        var blocks = new List<nint>();
        try
        {
            var argvArray = ToCArray(argv, blocks);
            var envArray = ToCArray(envp, blocks);
            var attributes = stackalloc byte[Interop.Sys.SpawnAttrSize];
            var mask = stackalloc byte[Interop.Sys.SigSetSize];
            var defaults = stackalloc byte[Interop.Sys.SigSetSize];
            _ = Interop.Sys.PosixSpawnAttrInit(attributes);
            try
            {
                // The runtime ignores SIGPIPE and blocks signals on some threads; an ignored disposition and the
                // mask survive exec, so a victim would inherit them. Reset both, as Process.Start does.
                _ = Interop.Sys.SigEmptySet(mask);
                _ = Interop.Sys.SigFillSet(defaults);
                _ = Interop.Sys.PosixSpawnAttrSetSigMask(attributes, mask);
                _ = Interop.Sys.PosixSpawnAttrSetSigDefault(attributes, defaults);
                _ = Interop.Sys.PosixSpawnAttrSetFlags(attributes, Interop.Sys.POSIX_SPAWN_SETSIGDEF | Interop.Sys.POSIX_SPAWN_SETSIGMASK);
                int pid;
                var error = Interop.Sys.PosixSpawn(&pid, path, null, attributes, (byte**)argvArray, (byte**)envArray);
                return error == 0 ? pid : throw new ProcessStartException(Interop.Sys.DescribeError(error), error);
            }
            finally
            {
                _ = Interop.Sys.PosixSpawnAttrDestroy(attributes);
            }
        }
        finally
        {
            foreach (var block in blocks)
            {
                Marshal.FreeHGlobal(block);
            }
        }
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
}
