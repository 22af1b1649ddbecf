using System.Buffers.Binary;
using System.Globalization;
using Microsoft.Win32.SafeHandles;

namespace ProcHex.Backends.Linux.Tests.Support;

/// <summary>Looks at processes from outside, as the user or another tool would: /proc only, no ptrace.</summary>
internal static class Observe
{
    public static char? State(int pid)
    {
        try
        {
            var text = File.ReadAllText($"/proc/{pid}/stat");
            return text[text.LastIndexOf(')') + 2];
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Field 22 of /proc/PID/stat, the start time in clock ticks after boot; null when gone.</summary>
    public static ulong? StartTime(int pid)
    {
        try
        {
            var text = File.ReadAllText($"/proc/{pid}/stat");
            return ulong.Parse(text[(text.LastIndexOf(')') + 2)..].Split(' ')[22 - 3], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>
    /// The threads that are stopped and stay so, without being scheduled once, for <paramref name="milliseconds"/>
    /// and still for <paramref name="confirmMilliseconds"/> after the first look: a thread stuck in a stop shows up
    /// here, one passing through stop after stop (clone events) does not.
    /// </summary>
    /// <remarks>
    /// A stuck thread stays stuck forever, so the long second look loses nothing; it spares the verdict a thread
    /// that is only waiting, on a loaded machine, for a starved tracer thread to answer its stop (seen once in a
    /// few hundred runs with the 300 ms look alone under a load of 10 on 2 CPUs).
    /// </remarks>
    public static async Task<IReadOnlyList<int>> StuckThreads(int pid, int milliseconds = 300, int confirmMilliseconds = 5000)
    {
        var first = ThreadStates(pid);
        await Task.Delay(milliseconds);
        var suspects = UnscheduledStops(first, ThreadStates(pid));
        if (suspects.Count == 0)
        {
            return suspects;
        }

        // Context switch counts only grow: unchanged since the first look means never scheduled in between.
        await Task.Delay(Math.Max(0, confirmMilliseconds - milliseconds));
        return UnscheduledStops(first, ThreadStates(pid));
    }

    private static List<int> UnscheduledStops(Dictionary<int, (char State, string Switches)> before, Dictionary<int, (char State, string Switches)> after) =>
        before.Where(t => t.Value.State is 't' or 'T' && after.TryGetValue(t.Key, out var now) && now == t.Value)
            .Select(t => t.Key).ToList();

    /// <summary>Each thread's state and its count of context switches (which a thread that stays stopped keeps).</summary>
    private static Dictionary<int, (char State, string Switches)> ThreadStates(int pid)
    {
        var states = new Dictionary<int, (char, string)>();
        try
        {
            foreach (var dir in Directory.EnumerateDirectories($"/proc/{pid}/task"))
            {
                if (int.TryParse(Path.GetFileName(dir), CultureInfo.InvariantCulture, out var tid) && State(tid) is { } state)
                {
                    var switches = string.Join(' ', File.ReadLines($"{dir}/status").Where(l => l.Contains("ctxt_switches", StringComparison.Ordinal)));
                    states[tid] = (state, switches);
                }
            }
        }
        catch (IOException)
        {
        }

        return states;
    }

    public static int TracerPid(int pid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("TracerPid:", StringComparison.Ordinal));
            return int.Parse(line["TracerPid:".Length..].Trim(), CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return 0;
        }
    }

    /// <summary>The real uid (first field of the Uid: line of /proc/PID/status); -1 when gone.</summary>
    public static int Uid(int pid) => UidField(pid, 0);

    public static int EffectiveUid(int pid) => UidField(pid, 1);

    private static int UidField(int pid, int index)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("Uid:", StringComparison.Ordinal));
            return int.Parse(line["Uid:".Length..].Split('\t', StringSplitOptions.RemoveEmptyEntries)[index], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return -1;
        }
    }

    public static string Exe(int pid) => new FileInfo($"/proc/{pid}/exe").LinkTarget ?? "";

    /// <summary>Load bias of the main executable: where its offset-0 mapping starts.</summary>
    public static ulong LoadBias(int pid, string path) => MappingStart(pid, Path.GetFullPath(path));

    public static ulong MappingStart(int pid, string path)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/maps"))
        {
            var f = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            if (f.Length == 6 && f[5] == path)
            {
                return ulong.Parse(f[0].Split('-')[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture)
                    - ulong.Parse(f[2], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidOperationException($"{path} not mapped in {pid}");
    }

    public static string? MappedPathContaining(int pid, string part)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/maps"))
        {
            var f = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            if (f.Length == 6 && f[5].Contains(part, StringComparison.Ordinal))
            {
                return f[5];
            }
        }

        return null;
    }

    /// <summary>
    /// The PC of a stopped process outside a system call, from /proc/PID/syscall ("-1 SP PC"); as the kernel
    /// sees it, with no ptrace of ours involved.
    /// </summary>
    public static ulong ProgramCounter(int pid)
    {
        var fields = File.ReadAllText($"/proc/{pid}/syscall").Trim().Split(' ');
        return fields.Length >= 3 ? Convert.ToUInt64(fields[^1], 16) : throw new InvalidOperationException($"pid {pid}: /proc/PID/syscall says {string.Join(' ', fields)}");
    }

    /// <summary>AT_ENTRY from /proc/PID/auxv: the executable's entry point (the postinit rendezvous).</summary>
    public static ulong AuxvEntry(int pid) => Auxv(pid, 9);

    private static ulong Auxv(int pid, ulong type)
    {
        var auxv = File.ReadAllBytes($"/proc/{pid}/auxv");
        for (var i = 0; i + 16 <= auxv.Length; i += 16)
        {
            if (BinaryPrimitives.ReadUInt64LittleEndian(auxv.AsSpan(i)) == type)
            {
                return BinaryPrimitives.ReadUInt64LittleEndian(auxv.AsSpan(i + 8));
            }
        }

        return 0;
    }

    /// <summary>AT_BASE + the interpreter's e_entry: the first instruction a dynamic executable runs.</summary>
    public static ulong InterpreterEntry(int pid)
    {
        var auxv = File.ReadAllBytes($"/proc/{pid}/auxv");
        ulong atBase = 0;
        for (var i = 0; i + 16 <= auxv.Length; i += 16)
        {
            if (BinaryPrimitives.ReadUInt64LittleEndian(auxv.AsSpan(i)) == 7)
            {
                atBase = BinaryPrimitives.ReadUInt64LittleEndian(auxv.AsSpan(i + 8));
            }
        }

        var interp = MappedPathContaining(pid, "ld-linux") ?? throw new InvalidOperationException("no ld.so mapped");
        var header = new byte[64];
        using (var f = File.OpenRead(interp))
        {
            f.ReadExactly(header);
        }

        return atBase + BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(24));
    }

    /// <summary>Reads another process's memory through /proc/PID/mem (as root, or as its user while it is dumpable).</summary>
    public static byte[] Memory(int pid, ulong address, int length)
    {
        using SafeFileHandle h = File.OpenHandle($"/proc/{pid}/mem", FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var buffer = new byte[length];
        var n = RandomAccess.Read(h, buffer, (long)address);
        return buffer[..n];
    }

    public static long ReadLong(int pid, ulong address) => BinaryPrimitives.ReadInt64LittleEndian(Memory(pid, address, 8));

    /// <summary>Children of this test process in the zombie state (the owner thread must reap all it creates).</summary>
    public static IReadOnlyList<int> ZombieChildren() => [.. Children().Where(pid => State(pid) == 'Z')];

    /// <summary>Every child of this test process (of any of its threads), in any state.</summary>
    public static IReadOnlyList<int> Children()
    {
        var children = new List<int>();
        foreach (var task in Directory.EnumerateDirectories($"/proc/{Environment.ProcessId}/task"))
        {
            string text;
            try
            {
                text = File.ReadAllText(Path.Combine(task, "children"));
            }
            catch (IOException)
            {
                continue;
            }

            children.AddRange(text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(c => int.Parse(c, CultureInfo.InvariantCulture)));
        }

        return children;
    }

    /// <summary>
    /// Every executable file-backed mapping of <paramref name="pid"/> compared with its file: the addresses whose
    /// bytes differ (a breakpoint left behind). Empty when the text is the file's, or when the process is gone (or
    /// dying: then an unprivileged tester may no longer read it).
    /// </summary>
    public static IReadOnlyList<string> TextDifferences(int pid)
    {
        var differences = new List<string>();
        string[] lines;
        try
        {
            lines = File.ReadAllLines($"/proc/{pid}/maps");
        }
        catch (IOException)
        {
            return differences;
        }
        catch (UnauthorizedAccessException) when (State(pid) is null or 'Z')
        {
            return differences;
        }

        foreach (var line in lines)
        {
            var f = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 6 || f[1][2] != 'x' || !f[5].StartsWith('/') || !File.Exists(f[5]))
            {
                continue;
            }

            var range = f[0].Split('-');
            var start = ulong.Parse(range[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            var end = ulong.Parse(range[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            var offset = long.Parse(f[2], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            byte[] memory;
            try
            {
                memory = Memory(pid, start, (int)(end - start));
            }
            catch (IOException)
            {
                return differences;
            }
            catch (UnauthorizedAccessException) when (State(pid) is null or 'Z')
            {
                // It died meanwhile. Root never sees this; an unprivileged tester does: the kernel gives the /proc
                // files of a process that has let go of its memory to root (task_dump_owner), so /proc/PID/mem
                // fails with EACCES instead of reading nothing.
                return differences;
            }

            var file = new byte[memory.Length];
            int n;
            using (var stream = File.OpenRead(f[5]))
            {
                stream.Position = offset;
                n = stream.ReadAtLeast(file, file.Length, throwOnEndOfStream: false);
            }

            var at = memory.AsSpan(0, n).CommonPrefixLength(file.AsSpan(0, n));
            while (at < n)
            {
                differences.Add($"{f[5]}+0x{offset + at:x} (0x{start + (ulong)at:x}: {memory[at]:x2} instead of {file[at]:x2})");
                var next = memory.AsSpan(at + 1, n - at - 1).CommonPrefixLength(file.AsSpan(at + 1, n - at - 1));
                at += 1 + next;
            }
        }

        return differences;
    }

    /// <summary>
    /// The invariants every Linux test ends with, for one victim it touched: if it still exists (and is not a
    /// zombie) it is not traced, not stopped unless <paramref name="mayBeStopped"/>, and its text is the file's.
    /// </summary>
    public static async Task CheckReleased(int pid, bool mayBeStopped)
    {
        if (State(pid) is null or 'Z')
        {
            return;
        }

        Assert.True(await Eventually(() => TracerPid(pid) == 0 || State(pid) is null or 'Z'), $"pid {pid} is still traced after the test");
        if (!mayBeStopped)
        {
            Assert.True(await Eventually(() => State(pid) is not ('T' or 't')), $"pid {pid} was left stopped");
        }

        var differences = TextDifferences(pid);
        Assert.True(differences.Count == 0, $"pid {pid}: text differs from its file at {string.Join(", ", differences.Take(5))}");
    }

    public static async Task<bool> Eventually(Func<bool> condition, int milliseconds = 5000)
    {
        var deadline = Environment.TickCount64 + milliseconds;
        while (Environment.TickCount64 < deadline)
        {
            if (condition())
            {
                return true;
            }

            await Task.Delay(10);
        }

        return condition();
    }
}
