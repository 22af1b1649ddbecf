using System.Globalization;
using System.Runtime.InteropServices;

namespace ProcHex.Scale;

/// <summary>/proc, read the way any outside tool would: no ptrace, no ProcHex.</summary>
internal static partial class ProcSelf
{
    /// <summary>A numeric "Name:\tvalue [kB]" field of /proc/PID/status, or -1.</summary>
    public static long StatusNumber(string pid, string name)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith(name, StringComparison.Ordinal) && line.Length > name.Length && line[name.Length] == ':')
                {
                    var value = line[(name.Length + 1)..].Trim().Split(' ')[0];
                    return long.Parse(value, CultureInfo.InvariantCulture);
                }
            }
        }
        catch (IOException)
        {
        }

        return -1;
    }

    public static int Threads() => (int)StatusNumber("self", "Threads");

    public static long RssKiB() => StatusNumber("self", "VmRSS");

    public static int OpenFds() => Directory.GetFileSystemEntries("/proc/self/fd").Length;

    /// <summary>Thread names (comm) of this process, counted: "ProcHex ptrace owner", ".NET TP Worker", ...</summary>
    public static SortedDictionary<string, int> ThreadNames()
    {
        var names = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach (var task in Directory.EnumerateDirectories("/proc/self/task"))
        {
            try
            {
                var name = File.ReadAllText(Path.Combine(task, "comm")).Trim();
                names[name] = names.GetValueOrDefault(name) + 1;
            }
            catch (IOException)
            {
            }
        }

        return names;
    }

    /// <summary>The state letter of /proc/PID/stat, or null when the process is gone.</summary>
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

    public static int ParentPid(int pid)
    {
        try
        {
            var text = File.ReadAllText($"/proc/{pid}/stat");
            return int.Parse(text[(text.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return -1;
        }
    }

    public static int TracerPid(int pid) => (int)StatusNumber(pid.ToString(CultureInfo.InvariantCulture), "TracerPid");

    /// <summary>Where the offset-0 mapping of <paramref name="path"/> starts in the process, or null.</summary>
    public static ulong? MappingStart(int pid, string path)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/maps"))
            {
                var f = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
                if (f.Length == 6 && f[5] == path && ulong.Parse(f[2], NumberStyles.HexNumber, CultureInfo.InvariantCulture) == 0)
                {
                    return ulong.Parse(f[0].Split('-')[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                }
            }
        }
        catch (IOException)
        {
        }

        return null;
    }

    /// <summary>Reads victim memory through /proc/PID/mem (root, or the victim's user under ptrace_scope 0).</summary>
    public static byte[]? Memory(int pid, ulong address, int count)
    {
        try
        {
            using var mem = new FileStream($"/proc/{pid}/mem", FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.None);
            mem.Seek(unchecked((long)address), SeekOrigin.Begin);
            var buffer = new byte[count];
            mem.ReadExactly(buffer);
            return buffer;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Soft and hard RLIMIT_NOFILE, from /proc/self/limits.</summary>
    public static string OpenFileLimit()
    {
        var line = File.ReadLines("/proc/self/limits").FirstOrDefault(l => l.StartsWith("Max open files", StringComparison.Ordinal));
        var f = line?["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return f is { Length: >= 2 } ? $"{f[0]} soft / {f[1]} hard" : "unknown";
    }

    /// <summary>Children of this process that are zombies.</summary>
    public static List<int> ZombieChildren()
    {
        var me = Environment.ProcessId;
        var zombies = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                && ParentPid(pid) == me && State(pid) is 'Z' or 'X')
            {
                zombies.Add(pid);
            }
        }

        return zombies;
    }

    /// <summary>CLOCK_MONOTONIC in nanoseconds, straight from libc.</summary>
    public static unsafe long MonotonicNs()
    {
        Timespec t;
        return ClockGettime(1, &t) == 0 ? (t.Seconds * 1_000_000_000L) + t.Nanoseconds : throw new InvalidOperationException("clock_gettime failed");
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    /// <summary>Sends SIGSTOP (for the self-check of the release check).</summary>
    public static void Stop(int pid) => _ = Kill(pid, 19);

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static unsafe partial int ClockGettime(int clock, Timespec* time);
}
