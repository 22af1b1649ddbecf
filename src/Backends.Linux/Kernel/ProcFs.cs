using System.Globalization;
using ProcHex.Ports;

namespace ProcHex.Backends.Linux;

/// <summary>
/// What /proc says about a process, read without tracing it. Only <see cref="LinuxKernel"/> reads it. The proc file
/// system is found at <see cref="Root"/> ("/proc", or where a tracer in a container has the host's mounted: issue 22
/// item 4).
/// </summary>
internal sealed class ProcFs(string root)
{
    /// <summary>Where the proc file system is mounted, without a trailing slash.</summary>
    public string Root { get; } = root.TrimEnd('/') is { Length: > 0 } trimmed ? trimmed : "/proc";

    /// <summary>The process state letter from /proc/PID/stat ('R', 'S', 'T', 't', 'Z', ...), or null when gone.</summary>
    public char? State(int pid)
    {
        var stat = ReadStat(pid);
        return stat is null ? null : stat[0][0];
    }

    /// <summary>The fields of /proc/PID/stat after "(comm)": index 0 is field 3 (state).</summary>
    public string[]? ReadStat(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"{Root}/{pid}/stat");
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
    public ulong? StatField(int pid, int number)
    {
        var fields = ReadStat(pid);
        return fields is null || fields.Length <= number - 3 ? null : ulong.Parse(fields[number - 3], CultureInfo.InvariantCulture);
    }

    /// <summary>A "Name:\tvalue" line of /proc/PID/status, or null.</summary>
    public string? StatusField(int pid, string name) => StatusField(pid.ToString(CultureInfo.InvariantCulture), name);

    private string? StatusField(string process, string name)
    {
        try
        {
            foreach (var line in File.ReadLines($"{Root}/{process}/status"))
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

    /// <summary>kernel.yama.ptrace_scope (0 to 3), or null when Yama is not in this kernel.</summary>
    public int? PtraceScope()
    {
        try
        {
            return int.TryParse(File.ReadAllText($"{Root}/sys/kernel/yama/ptrace_scope").Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var scope)
                ? scope
                : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// A line of the calling thread's own status (/proc/thread-self/status): credentials belong to a thread, and the
    /// one that traces is the one whose credentials the kernel checks.
    /// </summary>
    public string? CallerStatusField(string name) => StatusField("thread-self", name);

    /// <summary>
    /// The owner uid of the files in /proc/PID (its stat file; the directory itself keeps the process's uid): root's
    /// when the process is not dumpable (proc(5)), else its effective uid.
    /// </summary>
    public unsafe uint? Owner(int pid)
    {
        var buffer = stackalloc byte[Interop.Sys.StatSize];
        return Interop.Sys.Stat($"{Root}/{pid}/stat", buffer) == 0 ? *(uint*)(buffer + Interop.Sys.StatUidOffset) : null;
    }

    /// <summary>
    /// Where the files a process maps are found from here: null when it sees the file system we do (same mount
    /// namespace, same root), else /proc/PID/root, through which its paths resolve (a container, a chroot).
    /// </summary>
    public string? ObjectRoot(int pid)
    {
        try
        {
            var theirs = new FileInfo($"{Root}/{pid}/ns/mnt").LinkTarget;
            var ours = new FileInfo($"{Root}/thread-self/ns/mnt").LinkTarget;
            var root = new FileInfo($"{Root}/{pid}/root").LinkTarget;
            return theirs == ours && root == "/" ? null : $"{Root}/{pid}/root";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public int TracerPid(int pid) =>
        int.TryParse(StatusField(pid, "TracerPid"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var tracer) ? tracer : 0;

    public string Maps(int pid) => File.ReadAllText($"{Root}/{pid}/maps");

    public byte[] Auxv(int pid) => File.ReadAllBytes($"{Root}/{pid}/auxv");

    public string? ExeLink(int pid) => new FileInfo($"{Root}/{pid}/exe").LinkTarget;

    public byte[] ExeHeader(int pid)
    {
        using var exe = File.OpenRead($"{Root}/{pid}/exe");
        var header = new byte[Elf.ElfMachine.HeaderBytes];
        return header[..exe.ReadAtLeast(header, header.Length, throwOnEndOfStream: false)];
    }

    public IReadOnlyList<int> Processes() =>
        [.. Directory.EnumerateDirectories(Root)
            .Select(d => int.TryParse(Path.GetFileName(d), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? pid : 0)
            .Where(pid => pid > 0)];

    public IReadOnlyList<int> Threads(int pid)
    {
        try
        {
            return [.. Directory.EnumerateDirectories($"{Root}/{pid}/task")
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
    public IReadOnlyList<ThreadSnapshot> ThreadSnapshots(int pid)
    {
        const int ESRCH = 3, EACCES = 13;
        var snapshots = new List<ThreadSnapshot>();
        foreach (var tid in Threads(pid))
        {
            string line;
            try
            {
                line = File.ReadAllText($"{Root}/{pid}/task/{tid}/syscall").Trim();
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
            snapshots.Add(new ThreadSnapshot(tid, pc) { Name = ThreadName(pid, tid) });
        }

        return snapshots.Count > 0 ? snapshots : throw new TracerException($"pid {pid}: no such process", TracerErrorKind.Gone, ESRCH);
    }

    /// <summary>A thread's <c>comm</c>, or null when it cannot be read (the thread exited meanwhile).</summary>
    private string? ThreadName(int pid, int tid)
    {
        try
        {
            return File.ReadAllText($"{Root}/{pid}/task/{tid}/comm").TrimEnd('\n');
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
}
