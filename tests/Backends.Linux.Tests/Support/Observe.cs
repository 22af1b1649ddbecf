using System.Buffers.Binary;
using System.Globalization;
using Microsoft.Win32.SafeHandles;

namespace ProcHex.Tests.Support;

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

    /// <summary>Reads another process's memory through /proc/PID/mem (as root or its parent).</summary>
    public static byte[] Memory(int pid, ulong address, int length)
    {
        using SafeFileHandle h = File.OpenHandle($"/proc/{pid}/mem", FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var buffer = new byte[length];
        var n = RandomAccess.Read(h, buffer, (long)address);
        return buffer[..n];
    }

    public static long ReadLong(int pid, ulong address) => BinaryPrimitives.ReadInt64LittleEndian(Memory(pid, address, 8));

    /// <summary>Children of this test process in the zombie state (the owner thread must reap all it creates).</summary>
    public static IReadOnlyList<int> ZombieChildren()
    {
        var zombies = new List<int>();
        foreach (var task in Directory.EnumerateDirectories($"/proc/{Environment.ProcessId}/task"))
        {
            string children;
            try
            {
                children = File.ReadAllText(Path.Combine(task, "children"));
            }
            catch (IOException)
            {
                continue;
            }

            foreach (var c in children.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                var pid = int.Parse(c, CultureInfo.InvariantCulture);
                if (State(pid) == 'Z')
                {
                    zombies.Add(pid);
                }
            }
        }

        return zombies;
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
