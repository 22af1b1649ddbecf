using static Interop;

namespace ProcHex.Backends.FreeBSD;

/// <summary>
/// Fork and vfork children of <see cref="FreeBsdProcess"/>: they run on untraced, with our traps taken out of their text.
/// </summary>
internal sealed partial class FreeBsdProcess
{
    /// <summary>
    /// A fork child arrives traced and stopped (PTRACE_FORK, first stop SIGSTOP with PL_FLAG_CHILD) before it runs
    /// user code. It inherited our int3 bytes: put the original bytes back in its copy and let it go.
    /// </summary>
    private void DetachForkChild(int child)
    {
        if (child <= 0)
        {
            return;
        }

        int status;
        int r;
        int errno;
        do
        {
            r = _kernel.WaitPid(child, out status, 0, out errno);
        }
        while (r == -1 && errno == Errno.EINTR);

        if (r == -1 || !Wait.IfStopped(status))
        {
            return;
        }

        foreach (var patch in _planted.Values)
        {
            _ = _ptrace.Io(child, PiodOp.PIOD_WRITE_I, patch.Address, [(byte)patch.OriginalBytes], out _);
        }

        _ = _ptrace.Raw(PtraceRequest.PT_DETACH, child, PtraceRequest.ResumeHere, 0, out _);
        Log.ForkChildDetached(_logger, Pid, child, _planted.Count);
    }
}
