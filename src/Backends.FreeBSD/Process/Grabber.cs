using Microsoft.Extensions.Logging;
using ProcHex.Ports;
using static Interop;

namespace ProcHex.Backends.FreeBSD;

/// <summary>
/// Grabbing a running process: PT_ATTACH and the attach stop that follows it, with the refusals told apart as far as
/// FreeBSD's errno allows (p_candebug's EPERM has several causes it does not name).
/// </summary>
internal static class Grabber
{
    /// <summary>FreeBSD's analogue of Linux's kernel.yama.ptrace_scope: whether unprivileged users may debug their own processes.</summary>
    internal const string UnprivilegedDebugSetting = "security.bsd.unprivileged_proc_debug";

    /// <summary>Grabs <paramref name="pid"/>: PT_ATTACH and its attach stop for control; for read-only, only that it exists.</summary>
    public static FreeBsdProcess Grab(PtraceCalls ptrace, int pid, GrabAccess access, ILogger logger, ProcHexMetrics metrics)
    {
        if (pid <= 0)
        {
            throw new GrabException("no such process", TracerErrorKind.Gone, Errno.ESRCH);
        }

        if (pid == ptrace.Kernel.GetPid())
        {
            throw new GrabException("cannot grab our own process", TracerErrorKind.InvalidArgument, Errno.EINVAL);
        }

        // Before anything is attached or read as amd64: a foreign process is left running untouched.
        ArchitectureCheck.RefuseProcess(ptrace.Kernel, pid);
        if (access == GrabAccess.ReadOnly)
        {
            // Existence only: kill(pid, 0) answers ESRCH for a missing process and EPERM for one we may not signal.
            if (ptrace.Kernel.Kill(pid, 0, out var e) == -1 && e == Errno.ESRCH)
            {
                throw new GrabException("no such process", TracerErrorKind.Gone, e);
            }

            return new FreeBsdProcess(ptrace.Kernel, pid, access, created: false, pid, transparentAttach: false, logger) { Metrics = metrics };
        }

        if (ptrace.Raw(PtraceRequest.PT_ATTACH, pid, 0, 0, out var errno) == -1)
        {
            // Issue 22 item 3, minimal here: the kinds this backend tells apart already. EPERM is p_candebug's, whose
            // causes (another user, a set-id image, security.bsd.unprivileged_proc_debug=0) it does not tell apart.
            if (errno is Errno.EBUSY or Errno.EPERM)
            {
                var kind = errno == Errno.EBUSY ? GrabRefusalKind.AlreadyTraced : GrabRefusalKind.Unexplained;
                throw new GrabException(
                    errno == Errno.EBUSY
                        ? "already traced by another process"
                        : "permission denied: run as root, or as the same user with security.bsd.unprivileged_proc_debug=1 and without a set-id image (p_candebug)",
                    new GrabRefusal(kind, UnprivilegedDebugSetting, Privilege: "root"),
                    errno);
            }

            throw new GrabException(errno switch
            {
                Errno.ESRCH => "no such process (or it is a zombie)",
                Errno.EINVAL => "cannot trace a system process or an ancestor of the tracer",
                _ => Errno.Describe(errno),
            }, errno == Errno.EINVAL ? TracerErrorKind.Unsupported : Errno.KindOf(errno), errno);
        }

        var status = ptrace.WaitFor(pid, 0);
        if (!Wait.IfStopped(status))
        {
            throw new GrabException(Wait.IfSignaled(status)
                ? $"process died from signal {Wait.TermSignal(status)}"
                : $"process exited with status {Wait.ExitStatus(status)}");
        }

        // The first stop after PT_ATTACH is the attach stop: issignal takes the attach SIGSTOP before any other
        // pending signal while P2_PTRACE_FSTP is set (kern_sig.c), and it carries no sender (sigqueue_add).
        var info = ptrace.LwpInfo(pid);
        return new FreeBsdProcess(ptrace.Kernel, pid, access, created: false, info.pl_lwpid, IsTransparentAttach(info), logger) { Metrics = metrics };
    }

    /// <summary>
    /// A classic attach stop is a signal stop (PL_FLAG_SI, si_signo SIGSTOP, si_code 0); the transparent one has no
    /// siginfo, and then the signal of the first PT_CONTINUE/PT_DETACH is dropped.
    /// </summary>
    private static bool IsTransparentAttach(Interop.PtraceLwpInfo info) => (info.Flags & LwpFlags.PL_FLAG_SI) == 0;
}
