using System.Globalization;

namespace ProcHex.Chaos;

/// <summary>One line of /proc/PID/stat: what the invariants need.</summary>
internal readonly record struct ProcStat(char State, int ParentPid, ulong StartTime, string Command);

/// <summary>An executable file mapping of a victim.</summary>
internal readonly record struct TextMapping(ulong Start, ulong End, ulong Offset, string Path);

/// <summary>A byte of a victim's text that differs from its file.</summary>
internal readonly record struct TextDifference(ulong Address, string Path, ulong FileOffset, byte Expected, byte Actual)
{
    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"0x{Address:x} ({System.IO.Path.GetFileName(Path)}+0x{FileOffset:x}) holds 0x{Actual:x2}, the file 0x{Expected:x2}");
}

/// <summary>
/// What the kernel shows about processes, read from /proc without tracing anything: the ground truth the
/// invariants compare the session with.
/// </summary>
internal static class ProcView
{
    private static readonly Dictionary<string, byte[]> Files = [];

    public static ProcStat? Stat(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        var open = text.IndexOf('(', StringComparison.Ordinal);
        var close = text.LastIndexOf(')');
        if (open < 0 || close < 0 || close + 2 >= text.Length)
        {
            return null;
        }

        var fields = text[(close + 2)..].Split(' ');
        return new ProcStat(
            fields[0][0],
            int.Parse(fields[1], CultureInfo.InvariantCulture),
            ulong.Parse(fields[19], CultureInfo.InvariantCulture),
            text[(open + 1)..close]);
    }

    /// <summary>TracerPid from /proc/PID/status (a thread id of the tracer), or null when the process is gone.</summary>
    public static int? TracerPid(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("TracerPid:", StringComparison.Ordinal))
                {
                    return int.Parse(line.AsSpan(10).Trim(), CultureInfo.InvariantCulture);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }

        return null;
    }

    public static IEnumerable<int> AllPids()
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                yield return pid;
            }
        }
    }

    /// <summary>Our own threads: id and name.</summary>
    public static List<(int Tid, string Name)> OwnThreads()
    {
        var result = new List<(int, string)>();
        foreach (var dir in Directory.EnumerateDirectories("/proc/self/task"))
        {
            try
            {
                result.Add((int.Parse(Path.GetFileName(dir), CultureInfo.InvariantCulture), File.ReadAllText(Path.Combine(dir, "comm")).Trim()));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
            }
        }

        return result;
    }

    /// <summary>The executable file mappings (r-x, backed by a file that still exists).</summary>
    public static List<TextMapping>? Text(int pid)
    {
        var result = new List<TextMapping>();
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/maps"))
            {
                var parts = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length < 6 || parts[1].Length < 3 || parts[1][2] != 'x' || !parts[5].StartsWith('/') || parts[5].EndsWith("(deleted)", StringComparison.Ordinal))
                {
                    continue;
                }

                var range = parts[0].Split('-');
                result.Add(new TextMapping(
                    ulong.Parse(range[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                    ulong.Parse(range[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                    ulong.Parse(parts[2], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                    parts[5].Trim()));
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        return result;
    }

    /// <summary>Where <paramref name="path"/> is mapped at file offset 0 (the load bias of a PIE), or null.</summary>
    public static ulong? Base(int pid, string path)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/maps"))
            {
                var parts = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length == 6 && parts[5].Trim() == path && ulong.Parse(parts[2], NumberStyles.HexNumber, CultureInfo.InvariantCulture) == 0)
                {
                    return ulong.Parse(parts[0].Split('-')[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }

        return null;
    }

    /// <summary>Reads victim memory through /proc/PID/mem (root may read any process); the bytes read, 0 on failure.</summary>
    public static int ReadMemory(int pid, ulong address, Span<byte> destination)
    {
        try
        {
            using var mem = new FileStream($"/proc/{pid}/mem", FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1);
            mem.Seek((long)address, SeekOrigin.Begin);
            var total = 0;
            while (total < destination.Length)
            {
                var n = mem.Read(destination[total..]);
                if (n <= 0)
                {
                    break;
                }

                total += n;
            }

            return total;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    public static long? ReadLong(int pid, ulong address)
    {
        Span<byte> b = stackalloc byte[8];
        return ReadMemory(pid, address, b) == 8 ? BitConverter.ToInt64(b) : null;
    }

    /// <summary>The first byte of any executable file mapping that differs from the file; null when all match or the text is unreadable.</summary>
    public static TextDifference? CompareText(int pid)
    {
        if (Text(pid) is not { } mappings)
        {
            return null;
        }

        foreach (var m in mappings)
        {
            var file = FileBytes(m.Path);
            if (file is null || m.Offset >= (ulong)file.Length)
            {
                continue;
            }

            var length = (int)Math.Min(m.End - m.Start, (ulong)file.Length - m.Offset);
            var memory = new byte[length];
            var read = ReadMemory(pid, m.Start, memory);
            var expected = file.AsSpan((int)m.Offset, read);
            var index = expected.CommonPrefixLength(memory.AsSpan(0, read));
            if (index < read)
            {
                return new TextDifference(m.Start + (ulong)index, m.Path, m.Offset + (ulong)index, expected[index], memory[index]);
            }
        }

        return null;
    }

    private static byte[]? FileBytes(string path)
    {
        lock (Files)
        {
            if (!Files.TryGetValue(path, out var bytes))
            {
                try
                {
                    bytes = File.ReadAllBytes(path);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    bytes = null;
                }

                Files[path] = bytes!;
            }

            return bytes;
        }
    }
}
