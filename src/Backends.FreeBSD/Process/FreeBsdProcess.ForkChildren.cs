using ProcHex.Ports;
using static Interop;

namespace ProcHex.Backends.FreeBSD;

/// <summary>
/// Fork and vfork children of <see cref="FreeBsdProcess"/>: they run on untraced, with our traps taken out of their text.
/// </summary>
internal sealed partial class FreeBsdProcess
{
    // A fork child arrives traced and stopped (PTRACE_FORK, first stop SIGSTOP with PL_FLAG_CHILD) before it runs
    // user code. It inherited our int3 bytes: the cleaner puts the original bytes back in its copy and lets it go.
    bool IForkChildHooks.AwaitFirstStop(int child)
    {
        int status;
        int r;
        int errno;
        do
        {
            r = _kernel.WaitPid(child, out status, 0, out errno);
        }
        while (r == -1 && errno == Errno.EINTR);

        return r != -1 && Wait.IfStopped(status);
    }

    byte? IForkChildHooks.ReadText(int child, ulong address)
    {
        Span<byte> b = stackalloc byte[1];
        return _ptrace.Io(child, PiodOp.PIOD_READ_I, address, b, out _) == 1 ? b[0] : null;
    }

    /// <summary>Best effort, as before the cleaner was shared: a failed write is not reported.</summary>
    void IForkChildHooks.WriteText(int child, ulong address, byte original) =>
        _ = _ptrace.Io(child, PiodOp.PIOD_WRITE_I, address, [original], out _);

    void IForkChildHooks.Detach(int child) => _ = _ptrace.Raw(PtraceRequest.PT_DETACH, child, PtraceRequest.ResumeHere, 0, out _);

    void IForkChildHooks.RestoreFailed(int child, ulong address, TracerException error) =>
        Log.ReleaseStepFailed(_logger, child, $"restoring 0x{address:x} in a fork child", error.Message);

    void IForkChildHooks.Detached(int child, int traps) => Log.ForkChildDetached(_logger, Pid, child, traps);
}
