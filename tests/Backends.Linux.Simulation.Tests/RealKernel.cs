using System.Globalization;
using System.Runtime.InteropServices;

namespace ProcHex.Backends.Linux.Simulation.Tests;

/// <summary>
/// The real kernel and the spin2 fixture, for differential tests. ptrace binds a tracee to the thread that
/// seized it, so the whole scenario runs on one dedicated thread; a watchdog kills the victim if a wait hangs.
/// </summary>
internal sealed class RealKernel : IScenarioKernel
{
    private readonly int _pid;

    private RealKernel(int pid, int worker)
    {
        _pid = pid;
        Worker = worker;
    }

    public int Leader => _pid;

    public int Worker { get; }

    /// <summary>Runs <paramref name="scenario"/> against a fresh spin2 victim, seized by a thread of its own.</summary>
    public static List<string> Run(Func<IScenarioKernel, List<string>> scenario)
    {
        // A grandchild (the shell exits, init adopts it): the test host's Process.Start reaping must not see it.
        var pid = int.Parse(FixturePrograms.Run("/bin/sh", "-c", $"'{FixturePrograms.PathOf("spin2")}' </dev/null >/dev/null 2>&1 & echo $!").Trim(), CultureInfo.InvariantCulture);
        try
        {
            var worker = WaitForWorker(pid);
            List<string>? result = null;
            Exception? failure = null;
            var tracer = new Thread(() =>
            {
                try
                {
                    result = Trace(new RealKernel(pid, worker), scenario);
                }
                catch (Exception e)
                {
                    failure = e;
                }
            });
            tracer.Start();
            if (!tracer.Join(TimeSpan.FromSeconds(30)))
            {
                _ = Interop.Sys.Kill(pid, Interop.Sys.SIGKILL);
                tracer.Join();
                throw new TimeoutException("a real-kernel wait did not return in 30 s: the scenario is not what this kernel does");
            }

            return failure is null ? result! : throw new InvalidOperationException("the real-kernel scenario failed", failure);
        }
        finally
        {
            _ = Interop.Sys.Kill(pid, Interop.Sys.SIGKILL);
        }
    }

    private static List<string> Trace(RealKernel k, Func<IScenarioKernel, List<string>> scenario)
    {
        foreach (var tid in new[] { k.Leader, k.Worker })
        {
            Assert.Equal(0, LinuxKernel.Instance.Ptrace(Interop.Sys.PTRACE_SEIZE, tid, 0, Interop.Sys.PTRACE_O_TRACECLONE));
        }

        try
        {
            return scenario(k);
        }
        finally
        {
            // Kill and reap the traced threads here, on the tracer thread, so no zombie outlives the test (a thread
            // the scenario detached is its real parent's to reap).
            var traced = new[] { k.Worker, k.Leader }.Where(k.TracedByUs).ToList();
            _ = Interop.Sys.Kill(k._pid, Interop.Sys.SIGKILL);
            foreach (var tid in traced)
            {
                k.Wait(tid);
            }
        }
    }

    private static int WaitForWorker(int pid)
    {
        for (var i = 0; i < 500; i++)
        {
            var tasks = Directory.Exists($"/proc/{pid}/task") ? Directory.GetDirectories($"/proc/{pid}/task") : [];
            if (tasks.Length == 2)
            {
                return tasks.Select(d => int.Parse(Path.GetFileName(d), CultureInfo.InvariantCulture)).Single(t => t != pid);
            }

            Thread.Sleep(10);
        }

        throw new TimeoutException($"spin2 ({pid}) did not start its worker");
    }

    /// <summary>TracerPid in /proc/PID/task/TID/status is this process (the tracer thread's tgid).</summary>
    private bool TracedByUs(int tid)
    {
        var path = $"/proc/{_pid}/task/{tid}/status";
        var line = File.Exists(path) ? File.ReadLines(path).FirstOrDefault(l => l.StartsWith("TracerPid:", StringComparison.Ordinal)) : null;
        return line is not null && int.Parse(line["TracerPid:".Length..].Trim(), CultureInfo.InvariantCulture) == Environment.ProcessId;
    }

    public int Ptrace(int request, int tid, int data) => LinuxKernel.Instance.Ptrace(request, tid, 0, data);

    public int Kill(int signal) => Interop.Sys.Kill(_pid, signal) == 0 ? 0 : Marshal.GetLastPInvokeError();

    public int Tgkill(int tid, int signal) => TgkillCall(_pid, tid, signal) == 0 ? 0 : Marshal.GetLastPInvokeError();

    public unsafe int Wait(int tid)
    {
        int status;
        var r = Interop.Sys.WaitPid(tid, &status, Interop.Sys.__WALL);
        Assert.True(r == tid, $"waitpid({tid}) = {r}, errno {Marshal.GetLastPInvokeError()}");
        return status;
    }

    public void Settle() => Thread.Sleep(50);

    /// <summary>The state letter in /proc/PID/task/TID/stat (after the command, which may hold spaces).</summary>
    public char? State(int tid)
    {
        var path = $"/proc/{_pid}/task/{tid}/stat";
        return File.Exists(path) && File.ReadAllText(path) is var stat ? stat[stat.LastIndexOf(')') + 2] : null;
    }

    [DllImport("libc", EntryPoint = "tgkill", SetLastError = true)]
    private static extern int TgkillCall(int tgid, int tid, int signal);
}
