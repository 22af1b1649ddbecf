using ProcHex.Ports;
using static Interop;

namespace ProcHex.Backends.FreeBSD;

/// <summary>
/// Stepping the reporting LWP over one of our traps: the shared <see cref="StepOverPlanner{TRegisters}"/> emulates
/// where it can; otherwise the step runs out of line with the other LWPs suspended.
/// </summary>
internal sealed partial class FreeBsdProcess
{
    /// <summary>
    /// Executes the original instruction once for <paramref name="lwp"/>, the LWP whose breakpoint stop was answered.
    /// Returns false when an out-of-line step ended in something other than its trace trap; that status is kept for
    /// the next wait, and the caller must not continue.
    /// </summary>
    private bool StepOverNow(int lwp, BreakpointPatch patch) => _stepOverPlanner.StepOver(lwp, patch);

    Reg IStepOverHooks<Reg>.GetRegisters(int thread) => _ptrace.GetRegs(thread);

    void IStepOverHooks<Reg>.SetRegisters(int thread, in Reg registers) => _ptrace.SetRegs(thread, registers);

    X64Registers IStepOverHooks<Reg>.ToNeutral(in Reg registers) => Registers.ToNeutral(registers);

    Reg IStepOverHooks<Reg>.FromNeutral(in X64Registers neutral, in Reg original) => Registers.FromNeutral(neutral, original);

    int IStepOverHooks<Reg>.ReadText(ulong address, Span<byte> into) => Math.Max(0, _ptrace.Io(Pid, PiodOp.PIOD_READ_I, address, into, out _));

    void IStepOverHooks<Reg>.WriteData(ulong address, ReadOnlySpan<byte> bytes) => _ptrace.WriteAll(Pid, PiodOp.PIOD_WRITE_D, address, bytes);

    // A store the kernel refuses: a stack page not yet there, which only the victim's own fault grows.
    void IStepOverHooks<Reg>.EmulationFellBack(ulong site, TracerException error) => Log.EmulationFellBack(_logger, Pid, site, error.Message);

    /// <summary>
    /// The other LWPs are held with PT_SUSPEND, the original byte goes back, PT_STEP runs one instruction and the int3
    /// returns before anyone else runs. FreeBSD traces a process, not a thread: one resume (PT_STEP included) lets
    /// every LWP run except those PT_SUSPEND holds, and a clean step reports SIGTRAP with TRAP_TRACE for the stepped LWP.
    /// </summary>
    bool IStepOverHooks<Reg>.StepOutOfLine(int lwp, BreakpointPatch patch)
    {
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
