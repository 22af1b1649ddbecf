using Errno = ProcHex.Backends.Linux.Interop.Errno;
using Sys = ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux.Simulation.Kernel;

/// <summary>The tracer's waitpid(2) (kernel/exit.c do_wait, wait_task_stopped, wait_task_zombie).</summary>
internal sealed partial class FakeLinuxKernel
{
    /// <summary>
    /// waitpid(<paramref name="pid"/>, &amp;status, <paramref name="options"/>) by the tracer, which sees its
    /// tracees only (it is no victim's real parent). pid is a tid or -1. Without WNOHANG the world is stepped
    /// until a report comes; if none can, <see cref="SimulationStalledException"/> (the real call would hang).
    /// </summary>
    public (int Result, int Status, int Errno) WaitPid(int pid, int options)
    {
        if ((options & ~Abi.ModelledWaitOptions) != 0 || pid is 0 or < -1)
        {
            return (-1, 0, Errno.EINVAL);
        }

        for (var steps = 0; ; steps++)
        {
            var eligible = Eligible(pid);
            if (eligible.Count == 0)
            {
                return (-1, 0, Errno.ECHILD);
            }

            if (eligible.Select(Collect).FirstOrDefault(r => r is not null) is { } report)
            {
                Trace($"waitpid({pid}) = {report.Tid}, status 0x{report.Status:x}");
                return (report.Tid, report.Status, 0);
            }

            if ((options & Sys.WNOHANG) != 0)
            {
                return (0, 0, 0);
            }

            if (steps >= MaxStepsPerWait || !Step())
            {
                throw new SimulationStalledException($"waitpid({pid}) would block forever after {Steps} steps:\n{string.Join('\n', Log.TakeLast(30))}");
            }
        }
    }

    /// <summary>The tracer's ptraced list, newest first as the kernel scans it; zombies included until reaped.</summary>
    private List<FakeTask> Eligible(int pid) =>
        Enumerable.Reverse(_tracees).Where(t => pid == -1 || t.Tid == pid).ToList();

    /// <summary>
    /// wait_task_stopped and wait_task_zombie: a stop not yet collected (none while listening), or a zombie the
    /// leader of which is not delayed by live threads. Collecting a zombie reaps it.
    /// </summary>
    private (int Tid, int Status)? Collect(FakeTask t)
    {
        if (t.Report is not { } status)
        {
            return null;
        }

        if (t.State == TaskState.Traced && !t.IsListening)
        {
            t.Report = null;
            return (t.Tid, status);
        }

        if (t.State != TaskState.Zombie || IsDelayedLeader(t))
        {
            return null;
        }

        var tid = t.Tid;
        ReapByTracer(t);
        return (tid, status);
    }

    /// <summary>A reaped leader goes back to its real parent, which (being init here) reaps it at once.</summary>
    private void ReapByTracer(FakeTask t)
    {
        t.Report = null;
        t.Traced = false;
        _tracees.Remove(t);
        if (t.IsLeader)
        {
            ReapGroupIfDone(t.Group);
        }
        else
        {
            Release(t);
        }
    }
}
