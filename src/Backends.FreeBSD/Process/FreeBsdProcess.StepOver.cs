using ProcHex.Ports;
using static Interop;

namespace ProcHex.Backends.FreeBSD;

/// <summary>
/// Stepping the reporting LWP over one of our traps: emulated where possible, otherwise out of line with the others suspended.
/// </summary>
internal sealed partial class FreeBsdProcess
{
    /// <summary>
    /// Executes the original instruction once for the reporting LWP. Emulated when it can be (StepOver); otherwise the
    /// other LWPs are held with PT_SUSPEND, the original byte goes back, PT_STEP runs one instruction and the int3
    /// returns before anyone else runs. Returns false when the step ended in something other than its trace trap;
    /// that status is kept for the next wait, and the caller must not continue.
    /// </summary>
    private bool StepOverNow(BreakpointPatch patch)
    {
        var lwp = _lastLwp;
        Span<byte> text = stackalloc byte[16];
        var read = _ptrace.Io(Pid, PiodOp.PIOD_READ_I, patch.Address, text, out _);
        if (read > 0)
        {
            _traps.Overlay(patch.Address, text[..read]);
            text[0] = (byte)patch.OriginalBytes;
            if (StepOver.TryEmulate(_ptrace, Pid, lwp, text[..read]))
            {
                Metrics.RecordStepOver(StepOverKind.Emulated);
                return true;
            }
        }

        Metrics.RecordStepOver(StepOverKind.OutOfLine);

        var others = _ptrace.LwpList(Pid).Where(t => t != lwp).ToArray();
        foreach (var other in others)
        {
            _ptrace.Check(PtraceRequest.PT_SUSPEND, other, 0, 0, "PT_SUSPEND");
        }

        _ptrace.WriteAll(Pid, PiodOp.PIOD_WRITE_I, patch.Address, [(byte)patch.OriginalBytes]);
        _firstResumeDropsSignal = false;
        _ptrace.Check(PtraceRequest.PT_STEP, lwp, PtraceRequest.ResumeHere, 0, "PT_STEP");
        _stopped = false;
        var r = _waiter!.Next(0);
        var steppedCleanly = false;
        if (r.Result != -1 && Wait.IfStopped(r.Status))
        {
            _stopped = true;
            if (_traps.Contains(patch.Address) && !_vforkShared)
            {
                WriteTrap(patch.Address);
            }

            foreach (var other in others)
            {
                _ = _ptrace.Raw(PtraceRequest.PT_RESUME, other, 0, 0, out _);
            }

            var info = _ptrace.LwpInfo(Pid);
            steppedCleanly = Wait.StopSignal(r.Status) == Signals.SIGTRAP
                && info.pl_lwpid == lwp
                && (info.Flags & LwpFlags.PL_FLAG_SI) != 0
                && info.pl_siginfo.si_code == SiCode.TRAP_TRACE;
        }

        if (!steppedCleanly)
        {
            _stashed = r;
        }

        return steppedCleanly;
    }
}
