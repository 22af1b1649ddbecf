using ProcHex.Ports;
using static ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux;

/// <summary>
/// Stepping a thread over one of our traps: emulated where possible, otherwise out of line with every other thread stopped. Owner only.
/// </summary>
internal sealed partial class LinuxProcess
{
    private void StepOver(int tid, BreakpointPatch patch)
    {
        _owner.AssertCurrent();
        if (!_dead)
        {
            _ = _stepOver.StepOver(tid, patch);
        }
    }

    Interop.UserRegs IStepOverHooks<Interop.UserRegs>.GetRegisters(int thread) => GetRegs(thread);

    void IStepOverHooks<Interop.UserRegs>.SetRegisters(int thread, in Interop.UserRegs registers) => SetRegs(thread, registers);

    X64Registers IStepOverHooks<Interop.UserRegs>.ToNeutral(in Interop.UserRegs registers) => Registers.ToNeutral(registers);

    Interop.UserRegs IStepOverHooks<Interop.UserRegs>.FromNeutral(in X64Registers neutral, in Interop.UserRegs original) =>
        Registers.FromNeutral(neutral, original);

    int IStepOverHooks<Interop.UserRegs>.ReadText(ulong address, Span<byte> into) => ReadWithVmReadv(address, into, out _);

    void IStepOverHooks<Interop.UserRegs>.WriteData(ulong address, ReadOnlySpan<byte> bytes) => _memory.Write(address, bytes);

    // Seen for real: a push just below a stack that has yet to grow. The victim's own fault grows it, but a write
    // through /proc/PID/mem grows it only within the tracer's RLIMIT_STACK (acct_stack_growth reads the caller's
    // limit), and process_vm_writev never does since Linux 6.5.
    void IStepOverHooks<Interop.UserRegs>.EmulationFellBack(ulong site, TracerException error)
    {
        if (!_dead)
        {
            Log.EmulationFellBack(_logger, Pid, site, error.Message);
        }
    }

    /// <summary>Always true: a step that ends in another stop dispatches that stop itself, and the resume goes on.</summary>
    bool IStepOverHooks<Interop.UserRegs>.StepOutOfLine(int thread, BreakpointPatch patch)
    {
        if (!_dead)
        {
            StepOutOfLine(thread, patch);
        }

        return true;
    }

    /// <summary>All-stop single-step: every other thread is stopped while the original instruction is back.</summary>
    private void StepOutOfLine(int tid, BreakpointPatch patch)
    {
        _owner.AssertCurrent();
        var execs = _execs;
        _ = StopAll();

        // Stopping the others may have reaped the last thread an exec waited for: its report, on the leader's tid, is
        // kept by the owner (TakeLeaderStatus), and after it there is nothing left to step (linux simulation seed 1806).
        TakeLeaderStatus();
        if (_execs != execs || !_threads.TryGetValue(tid, out var thread) || _owner.HasPendingStatus(tid))
        {
            // It ended while the others stopped (another thread's exec, an exit_group): nothing is left to step. A
            // status kept for its tid says so too: a stopped thread reports nothing new unless it died, or unless
            // another thread's exec gave the leader's tid to the exec'ing thread, whose exec event that is (the old
            // leader never reports; linux simulation seed 2564). Stepping it would step the new image.
            return;
        }

        Metrics.RecordStepOver(StepOverKind.OutOfLine);
        _memory.Write(patch.Address, [(byte)patch.OriginalBytes]);
        try
        {
            while (true)
            {
                if (TryPtrace(PTRACE_SINGLESTEP, tid, 0, 0) != 0)
                {
                    return;
                }

                thread.Running = true;
                var next = _owner.WaitFor(tid);
                if (next is not { } status || status.Ended)
                {
                    ThreadEnded(thread, next ?? new WaitStatus(0));
                    return;
                }

                thread.Running = false;
                if (status.Event == 0 && status.StopSignal == SIGTRAP)
                {
                    return;
                }

                if (status.Event == PTRACE_EVENT_STOP && status.StopSignal != SIGTRAP)
                {
                    // Its part of someone else's group-stop, before the instruction ran: stepping on would end that
                    // part (S20; linux simulation seed 5). The machine takes the report (parks it); the step is
                    // abandoned with the PC still at the breakpoint, which the thread meets again once it runs.
                    _owner.Dispatch(tid, status);
                    return;
                }

                if (status.Event == PTRACE_EVENT_STOP)
                {
                    // A PTRACE_INTERRUPT left pending by an earlier stop-all fired before the instruction ran.
                    continue;
                }

                if (status.Event == 0)
                {
                    // A signal arrived before the instruction ran: deliver it at the real resume, step again. Two
                    // kinds end the step here instead, the PC still on the instruction (met again once the thread
                    // runs), the real resume delivering the signal from this stop:
                    // - a fault the instruction raised (si_code > 0: a store through a wild rbp, a page nobody maps):
                    //   stepping again would fault again, forever; delivered, it acts as it would untraced;
                    // - a stop signal: it can be given back only from the signal-delivery-stop it was dequeued in,
                    //   where a SIGCONT sent meanwhile cancels it (do_signal_stop acts only while
                    //   JOBCTL_STOP_DEQUEUED is set, which SIGCONT clears and every signal-delivery-stop sets again).
                    //   Given back from the step's own stop it would start a stop that a SIGCONT had already ended,
                    //   leaving the victim stopped after someone else's last word (linux simulation seed 71515).
                    thread.InjectSignal = status.StopSignal;
                    if (status.StopSignal is SIGSTOP or SIGTSTP or SIGTTIN or SIGTTOU
                        || (status.StopSignal is SIGSEGV or SIGBUS or SIGILL or SIGFPE && GetSignalCode(tid) > 0))
                    {
                        return;
                    }

                    continue;
                }

                // An event in the middle of the step (the instruction was a clone or fork syscall).
                _owner.Dispatch(tid, status);
                return;
            }
        }
        finally
        {
            if (!_dead && _traps.Contains(patch.Address))
            {
                _memory.Write(patch.Address, [Int3]);
            }
        }
    }
}
