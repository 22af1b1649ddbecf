using System.Globalization;
using Microsoft.Extensions.Logging;

namespace ProcHex.Backends.Linux.Tests.Support;

/// <summary>
/// The test assembly as a program of its own (issue 22 item 2): <c>dotnet ProcHex.Backends.Linux.Tests.dll
/// descriptor-budget PROGRAM N SOFT</c> lowers its own soft RLIMIT_NOFILE to SOFT, then creates N
/// victims of the loop fixture PROGRAM under one session, all held at once with a breakpoint on work(), then runs
/// them to their end. The limit is lowered here, after start-up, because the CoreCLR runtime raises the soft limit
/// to the hard one when it starts (a <c>prlimit --nofile=SOFT:</c> around <c>dotnet</c> is undone), and in a child
/// so that the test host's own limit stays as it is. It prints one line,
/// "victims N exited E hits H soft S0 -> S1 fds F" (F: descriptors open while all were held), then the backend's
/// log lines about the limit, and exits 0 when every victim ran to its end with every hit counted.
/// </summary>
internal static class DescriptorBudgetHost
{
    public const string Verb = "descriptor-budget";

    public static async Task<int> Main(string[] args)
    {
        if (args is not [Verb, var program, var count, var soft])
        {
            await Console.Error.WriteLineAsync($"usage: {Verb} PROGRAM N SOFT");
            return 2;
        }

        var victims = int.Parse(count, CultureInfo.InvariantCulture);
        var limit = new RLimit();
        if (GetRLimit(NoFile, ref limit) != 0 || (limit.Current = ulong.Parse(soft, CultureInfo.InvariantCulture)) > limit.Maximum || SetRLimit(NoFile, ref limit) != 0)
        {
            await Console.Error.WriteLineAsync($"cannot lower the soft RLIMIT_NOFILE to {soft}");
            return 2;
        }

        var log = new LimitLog();
        var before = SoftLimit();
        var tracer = new LinuxTracer(log);
        long hits = 0;
        var exited = 0;
        var fds = 0;
        string? failure = null;
        await using (var session = new ProcHexSession(tracer, new ProcHexOptions(), log))
        {
            var handles = new List<ProcessHandle>();
            try
            {
                for (var i = 0; i < victims; i++)
                {
                    var handle = await session.CreateAsync(program, [program, "3"]);
                    handles.Add(handle);
                    await session.SetBreakpointAsync(handle, "a.out`work", _ => Interlocked.Increment(ref hits));
                }

                fds = Directory.GetFileSystemEntries("/proc/self/fd").Length;
                handles.ForEach(session.Continue);
                while (exited < victims && await session.WaitForNotificationAsync(TimeSpan.FromSeconds(60)) is { } note)
                {
                    exited += note.Kind == NotificationKind.Exited && note.Exit?.Code == 0 ? 1 : 0;
                }
            }
            catch (ProcHexException e)
            {
                failure = $"victim {handles.Count + 1}: {e.Message} ({e.Kind})";
                fds = Directory.GetFileSystemEntries("/proc/self/fd").Length;
            }
        }

        Console.WriteLine($"victims {victims} exited {exited} hits {Interlocked.Read(ref hits)} soft {before} -> {SoftLimit()} fds {fds}");
        foreach (var line in log.Lines)
        {
            Console.WriteLine($"log: {line}");
        }

        if (failure is not null)
        {
            Console.WriteLine($"failed: {failure}");
        }

        return exited == victims && hits == 3L * victims ? 0 : 1;
    }

    private const int NoFile = 7;

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "getrlimit")]
    private static extern int GetRLimit(int resource, ref RLimit limit);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "setrlimit")]
    private static extern int SetRLimit(int resource, ref RLimit limit);

    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    /// <summary>The soft RLIMIT_NOFILE of this process, from /proc/self/limits.</summary>
    private static long SoftLimit()
    {
        var line = File.ReadLines("/proc/self/limits").Single(l => l.StartsWith("Max open files", StringComparison.Ordinal));
        return long.Parse(line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries)[0], CultureInfo.InvariantCulture);
    }

    /// <summary>Keeps the backend's lines about the descriptor limit (event ids 30 and 31).</summary>
    private sealed class LimitLog : LineLoggerFactory
    {
        public List<string> Lines { get; } = [];

        protected override void Write(EventId eventId, string line)
        {
            if (eventId.Id is 30 or 31 && line.Contains("RLIMIT_NOFILE", StringComparison.Ordinal))
            {
                Lines.Add(line);
            }
        }
    }
}
