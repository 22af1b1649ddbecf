using System.Globalization;
using ProcHex.Ports;
using Microsoft.Extensions.Logging;
using static ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux;

/// <summary>
/// Grab (S3, S4): PTRACE_SEIZE and PTRACE_INTERRUPT every thread in /proc/PID/task, again for threads born
/// meanwhile; the grab is done when every one has stopped. Read-only grabs touch nothing.
/// </summary>
internal static class Grabber
{
    // PF_KTHREAD in the flags of /proc/PID/stat (include/linux/sched.h).
    private const ulong KernelThreadFlag = 0x00200000;

    /// <summary>
    /// Owner thread only for <see cref="GrabAccess.Control"/>: seizes and interrupts every thread, then completes
    /// once each has stopped, from the statuses the owner goes on dispatching.
    /// </summary>
    public static Task<LinuxProcess> Grab(OwnerThread owner, int pid, GrabAccess access, ILogger logger, Action<LinuxProcess>? configure = null)
    {
        var kernel = owner.Kernel;
        Check(kernel, pid, access);
        var process = new LinuxProcess(owner, pid, access, created: false, logger);
        configure?.Invoke(process);
        if (access == GrabAccess.ReadOnly)
        {
            return Task.FromResult(process);
        }

        try
        {
            SeizeAll(kernel, process, pid);
        }
        catch
        {
            process.Release(ReleaseMode.Run);
            throw;
        }

        return process.AwaitSeizedThreads();
    }

    private static void Check(ILinuxKernel kernel, int pid, GrabAccess access)
    {
        if (pid == Environment.ProcessId)
        {
            throw new GrabException("cannot grab our own process", TracerErrorKind.InvalidArgument, Interop.Errno.EPERM);
        }

        var state = pid > 0 ? kernel.State(pid) : null;
        if (state is null)
        {
            throw new GrabException("no such process", TracerErrorKind.Gone, Interop.Errno.ESRCH);
        }

        if (state is 'Z' or 'X')
        {
            throw new GrabException("process is a zombie", TracerErrorKind.Gone, Interop.Errno.ESRCH);
        }

        if (kernel.StatusField(pid, "Tgid") is { } tgid && tgid != pid.ToString(CultureInfo.InvariantCulture))
        {
            throw new GrabException($"pid {pid} is a thread of process {tgid}; grab {tgid}", TracerErrorKind.InvalidArgument, Interop.Errno.ESRCH);
        }

        if ((kernel.StatField(pid, 9) & KernelThreadFlag) != 0)
        {
            throw new GrabException("process is a kernel thread", TracerErrorKind.Unsupported, Interop.Errno.EPERM);
        }

        // Before anything is seized or read as x86-64: a foreign process is left running untouched.
        ArchitectureCheck.RefuseProcess(kernel, pid);

        if (access == GrabAccess.ReadOnly)
        {
            // Reading a process's memory and maps needs no tracer slot and does not wait for it.
            return;
        }

        if (kernel.TracerPid(pid) is not 0)
        {
            throw Refused(kernel, pid, Interop.Errno.EPERM);
        }

        if (kernel.StatField(pid, 4) == (ulong)Environment.ProcessId)
        {
            // Our own child: its stops would be reported to any thread of this process that waits for it, and
            // the runtime waits for the children Process.Start made, so it would steal them and hang the grab.
            throw new GrabException(
                "process is a child of the tracer itself; start it under control (create) or from another process", TracerErrorKind.PermissionDenied, Interop.Errno.EPERM);
        }
    }

    private static void SeizeAll(ILinuxKernel kernel, LinuxProcess process, int pid)
    {
        var seen = new HashSet<int>();
        var seized = 0;
        while (true)
        {
            var fresh = kernel.Threads(pid).Where(seen.Add).OrderBy(t => t == pid ? 0 : 1).ToList();
            if (fresh.Count == 0)
            {
                break;
            }

            foreach (var tid in fresh)
            {
                var error = kernel.Ptrace(PTRACE_SEIZE, tid, 0, process.Options);
                if (error == 0)
                {
                    _ = process.AddThread(tid, running: true);
                    seized++;
                    _ = kernel.Ptrace(PTRACE_INTERRUPT, tid, 0, 0);
                }
                else if (error == Interop.Errno.ESRCH)
                {
                    // The thread exited while we attached: gone, not an error.
                    continue;
                }
                else if (tid == pid || seen.Count == 1)
                {
                    throw Reason(kernel, pid, error);
                }
                else if (error == Interop.Errno.EPERM && kernel.TracerPid(tid) != 0)
                {
                    // Born after we seized its creator: already ours (TRACECLONE), its first stop is on the way.
                    _ = process.AddThread(tid, running: true);
                    seized++;
                }
            }

            if (seen.Count > 0 && seized == 0)
            {
                throw new GrabException("no such process", TracerErrorKind.Gone, Interop.Errno.ESRCH);
            }
        }
    }

    private static GrabException Reason(ILinuxKernel kernel, int pid, int error) => error switch
    {
        Interop.Errno.ESRCH => new GrabException("no such process", TracerErrorKind.Gone, error),
        Interop.Errno.EPERM or Interop.Errno.EACCES => Refused(kernel, pid, error),
        _ => new GrabException(DescribeError(error), Interop.Errno.KindOf(error), error),
    };

    /// <summary>Control refused: which fact refused it, read now (issue 22 item 3). Owner thread: its credentials are checked.</summary>
    private static GrabException Refused(ILinuxKernel kernel, int pid, int error)
    {
        var (refusal, reason) = PtracePermission.Explain(pid, PtracePermission.Read(kernel, pid));
        return new GrabException(reason, refusal, error);
    }
}
