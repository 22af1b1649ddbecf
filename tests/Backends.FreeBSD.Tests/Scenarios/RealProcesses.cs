using System.Diagnostics;
using System.Globalization;
using ProcHex.Scenarios;

namespace ProcHex.Backends.FreeBSD.Tests.Scenarios;

/// <summary>
/// Real processes on a FreeBSD machine, seen from outside: ps(1) for state and the P_TRACED flag, procfs for text.
/// Only used when the tests run on FreeBSD; not exercised on Linux (see src/Backends.FreeBSD/README.md).
/// </summary>
internal sealed class RealProcesses(IFreeBsdKernel kernel)
{
    /// <summary>P_TRACED in ki_flag (sys/sys/proc.h), shown by ps -o flags in hex.</summary>
    private const int PTraced = 0x800;

    /// <summary>
    /// Starts the program as an orphan (sh backgrounds it and exits), so init is its parent and reaps it: the test
    /// process never waits for it, and the runtime's child handling never sees it.
    /// </summary>
    public static int StartOrphan(string file, IReadOnlyList<string> arguments)
    {
        var output = Run("/bin/sh", ["-c", "\"$0\" \"$@\" >/dev/null 2>&1 </dev/null & echo $!", file, .. arguments]);
        return int.Parse(output.Trim(), CultureInfo.InvariantCulture);
    }

    public static ProcessObservation Observe(int pid)
    {
        var line = Run("/bin/ps", ["-o", "stat=", "-o", "flags=", "-p", pid.ToString(CultureInfo.InvariantCulture)], allowFailure: true).Trim();
        var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length < 2)
        {
            return ProcessObservation.Gone;
        }

        var flags = int.Parse(fields[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        return new ProcessObservation(true, fields[0][0] == 'Z', fields[0][0] == 'T', (flags & PTraced) != 0);
    }

    /// <summary>Every executable file mapping equals its file, read through /proc/PID/mem (procfs must be mounted).</summary>
    public bool TextIsOriginal(int pid)
    {
        ReadOnlySpan<int> mib = [Interop.SysctlMib.CTL_KERN, Interop.SysctlMib.KERN_PROC, Interop.SysctlMib.KERN_PROC_VMMAP, pid];
        foreach (var entry in VmMap.Parse(VmMap.QueryGrowing(kernel, mib, pid, "KERN_PROC_VMMAP")).Where(e => e.IsFile && e.IsExecutable))
        {
            var memory = new byte[(int)(entry.End - entry.Start)];
            var read = kernel.ReadProcMem(pid, entry.Start, memory, out _);
            var file = new byte[memory.Length];
            using var stream = File.OpenRead(entry.Path);
            stream.Position = (long)entry.Offset;
            var n = Math.Min(read, stream.ReadAtLeast(file, file.Length, throwOnEndOfStream: false));
            if (n <= 0 || !memory.AsSpan(0, n).SequenceEqual(file.AsSpan(0, n)))
            {
                return false;
            }
        }

        return true;
    }

    private static string Run(string program, IReadOnlyList<string> arguments, bool allowFailure = false)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode == 0 || allowFailure ? output : throw new InvalidOperationException($"{program} failed");
    }
}
