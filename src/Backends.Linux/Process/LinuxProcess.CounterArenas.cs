using ProcHex.Backends.Linux.InVictim;
using ProcHex.Backends.Linux.Symbols;
using ProcHex.Ports;
using static ProcHex.Backends.Linux.InVictim.VictimSyscalls;

namespace ProcHex.Backends.Linux;

/// <summary>
/// Counter arenas (issue 18 item 1): mapped in the victim by injected system calls, in a stop of every thread of their
/// own, before the first install near them.
/// </summary>
internal sealed partial class LinuxProcess
{
    /// <summary>
    /// Maps arenas until every one of <paramref name="entries"/> has one within reach, in one stop; null, or why no
    /// arena could be mapped (the first failure ends the attempt: the next would fail alike).
    /// </summary>
    private string? MapArenas(IEnumerable<ulong> entries) =>
        WithEveryThreadStopped(CounterChange.Arena, () =>
        {
            ThrowIfNotControlled("map counter arenas");
            string? noArena = null;
            foreach (var entry in entries)
            {
                if (_counters.ArenaFor(entry) is null && TryCreateArena(entry, out noArena) is null)
                {
                    break;
                }
            }

            return noArena;
        });

    /// <summary>
    /// Maps an arena within reach of <paramref name="entry"/>: a memfd for the counters (shared with the tracer) and
    /// private r-x memory for the code, both MADV_DONTFORK, placed in a gap of the maps with MAP_FIXED_NOREPLACE. Null
    /// with <paramref name="why"/> when the victim cannot: nothing of a failed attempt is left in it.
    /// </summary>
    private CounterArena? TryCreateArena(ulong entry, out string? why)
    {
        try
        {
            var arena = CreateArena(entry);
            why = null;
            return arena;
        }
        catch (InferiorCallException e) when (!_dead)
        {
            why = $"0x{entry:x}: no counter arena: {e.Message}";
            return null;
        }
    }

    private CounterArena CreateArena(ulong entry)
    {
        var spot = InjectionSpot();
        var fd = InjectSyscall(spot, "memfd_create", MemfdCreate, [SyscallScratch(spot), MfdCloexec], "prochex-counters\0"u8);
        Check(fd, "memfd_create");
        try
        {
            Check(InjectSyscall(spot, "ftruncate", Ftruncate, [(ulong)fd, CounterArena.CounterBytes]), "ftruncate");
            var start = MapNear(spot, entry, (ulong)fd);
            var mapping = Kernel.MapProcessFile(Pid, (int)fd, out var errno);
            if (mapping is null)
            {
                _ = InjectSyscall(spot, "munmap", Munmap, [start, CounterArena.TotalBytes]);
                throw Failed("the tracer cannot map the victim's counters", errno);
            }

            var arena = new CounterArena(start, mapping);
            _counters.AddArena(arena, mapping);
            return arena;
        }
        finally
        {
            _ = InjectSyscall(spot, "close", Close, [(ulong)fd]);
        }
    }

    /// <summary>Maps the code and the counters side by side in the first gap that takes them; their start.</summary>
    private ulong MapNear(ulong spot, ulong entry, ulong fd)
    {
        var maps = ProcMaps.ReadOrThrow(Kernel, Pid);
        var tried = 0;
        foreach (var start in ArenaPlacement.Candidates(maps, entry, CounterArena.TotalBytes))
        {
            if (++tried > 8)
            {
                break;
            }

            var code = InjectSyscall(spot, "mmap", Mmap, [start, CounterArena.CodeBytes, ProtRead | ProtExec, MapPrivate | MapAnonymous | MapFixedNoReplace, ulong.MaxValue, 0]);
            if ((ulong)code != start)
            {
                if (!IsError(code, out _))
                {
                    _ = InjectSyscall(spot, "munmap", Munmap, [(ulong)code, CounterArena.CodeBytes]); // a kernel older than 4.17 took it as a hint
                }

                continue;
            }

            var counters = start + CounterArena.CodeBytes;
            var shared = InjectSyscall(spot, "mmap", Mmap, [counters, CounterArena.CounterBytes, ProtRead | ProtWrite, MapShared | MapFixedNoReplace, fd, 0]);
            if ((ulong)shared != counters)
            {
                _ = InjectSyscall(spot, "munmap", Munmap, [start, CounterArena.CodeBytes]);
                if (!IsError(shared, out _))
                {
                    _ = InjectSyscall(spot, "munmap", Munmap, [(ulong)shared, CounterArena.CounterBytes]);
                }

                continue;
            }

            if (IsError(InjectSyscall(spot, "madvise", Madvise, [start, CounterArena.TotalBytes, MadvDontFork]), out var errno))
            {
                _ = InjectSyscall(spot, "munmap", Munmap, [start, CounterArena.TotalBytes]);
                throw Failed("madvise(MADV_DONTFORK) failed in the victim", errno);
            }

            return start;
        }

        throw new InferiorCallException($"no free gap of {CounterArena.TotalBytes / 1024} KiB within {ArenaPlacement.Reach >> 30} GiB of 0x{entry:x} took the arena", TracerErrorKind.Exhausted);
    }

    private static void Check(long result, string name)
    {
        if (IsError(result, out var errno))
        {
            throw Failed($"{name} failed in the victim", errno);
        }
    }

    /// <summary>What failed, said with the errno's text, kind and number.</summary>
    private static InferiorCallException Failed(string what, int errno) =>
        new($"{what} ({Interop.Sys.DescribeError(errno)})", Interop.Errno.KindOf(errno), errno);
}
