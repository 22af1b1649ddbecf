using System.Globalization;
using ProcHex.Ports;

namespace ProcHex.Backends.Linux;

/// <summary>What /proc says about a process, read without tracing it. Only <see cref="LinuxKernel"/> reads it.</summary>
internal static class ProcFs
{
    /// <summary>The process state letter from /proc/PID/stat ('R', 'S', 'T', 't', 'Z', ...), or null when gone.</summary>
    public static char? State(int pid)
    {
        var stat = ReadStat(pid);
        return stat is null ? null : stat[0][0];
    }

    /// <summary>The fields of /proc/PID/stat after "(comm)": index 0 is field 3 (state).</summary>
    public static string[]? ReadStat(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }

        // comm may hold spaces and parentheses: the fields start after the last ')'.
        var close = text.LastIndexOf(')');
        return close < 0 ? null : text[(close + 2)..].Split(' ');
    }

    /// <summary>Field <paramref name="number"/> (1-based, as in proc(5)) of /proc/PID/stat.</summary>
    public static ulong? StatField(int pid, int number)
    {
        var fields = ReadStat(pid);
        return fields is null || fields.Length <= number - 3 ? null : ulong.Parse(fields[number - 3], CultureInfo.InvariantCulture);
    }

    /// <summary>A "Name:\tvalue" line of /proc/PID/status, or null.</summary>
    public static string? StatusField(int pid, string name)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith(name, StringComparison.Ordinal) && line.Length > name.Length && line[name.Length] == ':')
                {
                    return line[(name.Length + 1)..].Trim();
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return null;
    }

    public static int TracerPid(int pid) =>
        int.TryParse(StatusField(pid, "TracerPid"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var tracer) ? tracer : 0;

    public static string Maps(int pid) => File.ReadAllText($"/proc/{pid}/maps");

    public static byte[] Auxv(int pid) => File.ReadAllBytes($"/proc/{pid}/auxv");

    public static string? ExeLink(int pid) => new FileInfo($"/proc/{pid}/exe").LinkTarget;

    public static byte[] ExeHeader(int pid)
    {
        using var exe = File.OpenRead($"/proc/{pid}/exe");
        var header = new byte[Elf.ElfMachine.HeaderBytes];
        return header[..exe.ReadAtLeast(header, header.Length, throwOnEndOfStream: false)];
    }

    public static IReadOnlyList<int> Processes() =>
        [.. Directory.EnumerateDirectories("/proc")
            .Select(d => int.TryParse(Path.GetFileName(d), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? pid : 0)
            .Where(pid => pid > 0)];

    public static IReadOnlyList<int> Threads(int pid)
    {
        try
        {
            return [.. Directory.EnumerateDirectories($"/proc/{pid}/task")
                .Select(d => int.TryParse(Path.GetFileName(d), NumberStyles.Integer, CultureInfo.InvariantCulture, out var t) ? t : 0)
                .Where(t => t > 0)];
        }
        catch (IOException)
        {
            return [];
        }
    }

    /// <summary>
    /// Each thread with its user PC from <c>/proc/PID/task/TID/syscall</c> ("NR args... SP PC", or "-1 SP PC"
    /// when blocked outside a system call, or "running"): read without stopping anything, ptrace permission needed.
    /// </summary>
    public static IReadOnlyList<ThreadSnapshot> ThreadSnapshots(int pid)
    {
        const int ESRCH = 3, EACCES = 13;
        var snapshots = new List<ThreadSnapshot>();
        foreach (var tid in Threads(pid))
        {
            string line;
            try
            {
                line = File.ReadAllText($"/proc/{pid}/task/{tid}/syscall").Trim();
            }
            catch (UnauthorizedAccessException ex)
            {
                throw new TracerException($"cannot read the threads of pid {pid}: {ex.Message}", TracerErrorKind.PermissionDenied, EACCES, ex);
            }
            catch (IOException)
            {
                continue; // the thread exited between the listing and the read
            }

            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            ulong? pc = fields.Length >= 3 && ulong.TryParse(fields[^1].AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var value)
                ? value
                : null;
            snapshots.Add(new ThreadSnapshot(tid, pc));
        }

        return snapshots.Count > 0 ? snapshots : throw new TracerException($"pid {pid}: no such process", TracerErrorKind.Gone, ESRCH);
    }
}
