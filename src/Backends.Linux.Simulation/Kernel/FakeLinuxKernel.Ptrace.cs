using Errno = ProcHex.Backends.Linux.Interop.Errno;
using Sys = ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux.Simulation.Kernel;

/// <summary>The tracer's ptrace(2) requests (kernel/ptrace.c). Each returns 0 or an errno, as the seam's Ptrace.</summary>
internal sealed partial class FakeLinuxKernel
{
    public int Ptrace(int request, int tid, nint address, nint data)
    {
        var result = Request(request, tid, address, data);
        Trace($"ptrace({Name(request)}, {tid}, {address}, {data}) = {result}");
        return result;
    }

    /// <summary>PTRACE_GETREGS: ESRCH unless <paramref name="tid"/> is in a ptrace stop of ours.</summary>
    public int GetRegs(int tid, out Interop.UserRegs regs)
    {
        regs = default;
        if (StoppedTracee(tid) is not { } t)
        {
            return Errno.ESRCH;
        }

        regs = t.Registers;
        return 0;
    }

    public int SetRegs(int tid, in Interop.UserRegs regs)
    {
        if (StoppedTracee(tid) is not { } t)
        {
            return Errno.ESRCH;
        }

        t.Registers = regs;
        return 0;
    }

    /// <summary>PTRACE_PEEKDATA: ESRCH unless stopped, EIO where nothing is mapped.</summary>
    public int PeekData(int tid, ulong address) => PeekData(tid, address, out _);

    public int PeekData(int tid, ulong address, out ulong word)
    {
        word = 0;
        if (StoppedTracee(tid) is not { } t)
        {
            return Errno.ESRCH;
        }

        Span<byte> bytes = stackalloc byte[8];
        if (t.Group.Memory.Read(address, bytes) < bytes.Length)
        {
            return Errno.EIO;
        }

        word = BitConverter.ToUInt64(bytes);
        return 0;
    }

    public int GetEventMessage(int tid, out ulong message)
    {
        message = 0;
        if (StoppedTracee(tid) is not { } t)
        {
            return Errno.ESRCH;
        }

        message = t.Stop?.Message ?? 0;
        return 0;
    }

    /// <summary>PTRACE_GETSIGINFO: the siginfo of the stop (event stops have one too); EINVAL if there is none.</summary>
    public int GetSigInfo(int tid, out SigInfo info)
    {
        info = default;
        if (StoppedTracee(tid) is not { } t)
        {
            return Errno.ESRCH;
        }

        if (t.Stop is not { } stop)
        {
            return Errno.EINVAL;
        }

        info = stop.SigInfo;
        return 0;
    }

    /// <summary>PTRACE_PEEKSIGINFO on the private queue: is an int3's SIGTRAP (SI_KERNEL) waiting, not yet taken?</summary>
    public bool HasPendingKernelTrap(int tid) =>
        StoppedTracee(tid) is { } t && t.Pending.Items.Any(s => s.Signo == Sys.SIGTRAP && s.Code == Sys.SI_KERNEL);

    private int Request(int request, int tid, nint address, nint data)
    {
        if (request == Sys.PTRACE_SEIZE)
        {
            return Seize(tid, address, data);
        }

        // ptrace_check_attach: ours, and (but for INTERRUPT and KILL) in a ptrace stop that is not LISTEN.
        if (Find(tid) is not { Traced: true } t)
        {
            return Errno.ESRCH;
        }

        if (request is not (Sys.PTRACE_INTERRUPT or Sys.PTRACE_KILL) && !IsFrozen(t))
        {
            return Errno.ESRCH;
        }

        return request switch
        {
            Sys.PTRACE_INTERRUPT => Interrupt(t),
            Sys.PTRACE_LISTEN => Listen(t),
            Sys.PTRACE_CONT or Sys.PTRACE_SYSCALL => Resume(t, data, singleStep: false),
            Sys.PTRACE_SINGLESTEP => Resume(t, data, singleStep: true),
            Sys.PTRACE_DETACH => Abi.IsValidSignal(data) ? Unlink(t, (int)data) : Errno.EIO,
            Sys.PTRACE_SETOPTIONS => SetOptions(t, data),
            Sys.PTRACE_KILL => KillRequest(t),
            _ => Errno.EIO,
        };
    }

    private static bool IsFrozen(FakeTask t) => t.State == TaskState.Traced && !t.IsListening && !t.Group.IsDoomed(t);

    private FakeTask? StoppedTracee(int tid) => Find(tid) is { Traced: true } t && IsFrozen(t) ? t : null;

    /// <summary>
    /// ptrace_attach(PTRACE_SEIZE): no stop of its own. A task already in a group stop (state T) is moved into a
    /// PTRACE_EVENT_STOP trap before the call returns (JOBCTL_TRAPPING), so the tracer sees it stopped.
    /// </summary>
    private int Seize(int tid, nint address, nint options)
    {
        if (address != 0)
        {
            return Errno.EIO;
        }

        if ((options & ~(nint)Abi.ModelledOptions) != 0)
        {
            return Errno.EINVAL;
        }

        if (Find(tid) is not { } t)
        {
            return Errno.ESRCH;
        }

        if (t.Group.ExecTask is not null && !t.Traced && t.Group.GroupExitStatus is null)
        {
            // ptrace_attach takes the process's cred_guard_mutex, which an execve holds from prepare_bprm_creds until
            // it is done: the seize waits for the exec, then finds whatever thread holds the tid (linux simulation
            // seed 63935, a grab racing a non-leader's exec).
            Trace($"SEIZE {tid} waits for the exec of {t.Group.ExecTask.Tid} (cred_guard_mutex)");
            var group = t.Group;
            _ = RunUntil(() => group.ExecTask is null, 10_000);
            if (Find(tid) is not { } after)
            {
                return Errno.ESRCH;
            }

            t = after;
        }

        if (!t.IsAlive || t.Traced || t.Group.IsDoomed(t))
        {
            return Errno.EPERM;
        }

        Link(t, (int)options);
        if (t.State == TaskState.Stopped && t.SetJobctl(JobControl.TrapStop))
        {
            t.State = TaskState.Running;
            DoSignalWork(t);
        }

        return 0;
    }

    private void Link(FakeTask t, int options)
    {
        t.Traced = true;
        t.Options = options;
        _tracees.Add(t);
    }

    /// <summary>
    /// PTRACE_INTERRUPT: a STOP trap is due. A running task takes it at its next turn; a stopped one after it is
    /// resumed (the current trap is not disturbed); a listening one is woken to take it now.
    /// </summary>
    private int Interrupt(FakeTask t)
    {
        if (t.SetJobctl(JobControl.TrapStop) && t.IsListening)
        {
            WakeFromListen(t);
        }

        return 0;
    }

    /// <summary>
    /// PTRACE_LISTEN: only in a PTRACE_EVENT_STOP stop (EIO otherwise). If the group-stop state already changed
    /// since the trap (a notify is pending), the task re-traps at once.
    /// </summary>
    private int Listen(FakeTask t)
    {
        if (t.Stop is not { IsEventStop: true })
        {
            return Errno.EIO;
        }

        t.Jobctl |= JobControl.Listening;
        if (t.Has(JobControl.TrapNotify))
        {
            WakeFromListen(t);
        }

        return 0;
    }

    /// <summary>ptrace_resume: out of the stop; a signal given to a signal-delivery-stop is delivered, elsewhere ignored.</summary>
    private int Resume(FakeTask t, nint signal, bool singleStep)
    {
        if (!Abi.IsValidSignal(signal))
        {
            return Errno.EIO;
        }

        t.SingleStepping = singleStep;
        var stop = t.LeaveStop();
        ContinueAfterStop(t, stop, (int)signal, DeliverSignal);
        return 0;
    }

    private static int SetOptions(FakeTask t, nint options)
    {
        if ((options & ~(nint)Abi.ModelledOptions) != 0)
        {
            return Errno.EINVAL;
        }

        t.Options = (int)options;
        return 0;
    }

    private int KillRequest(FakeTask t)
    {
        if (t.IsAlive && IsFrozen(t))
        {
            Resume(t, Sys.SIGKILL, singleStep: false);
        }

        return 0;
    }

    /// <summary>
    /// __ptrace_unlink (PTRACE_DETACH, or the tracer's death): while a group stop is under way or in effect the
    /// task owes it a stop again, now an untraced one (state T); a stopped task is woken to go on or stop so.
    /// </summary>
    private int Unlink(FakeTask t, int signal)
    {
        t.Traced = false;
        t.Options = 0;
        t.SingleStepping = false;
        _tracees.Remove(t);
        if (!t.IsAlive)
        {
            t.Report = null;
            if (!t.IsLeader)
            {
                Release(t);
            }

            ReapGroupIfDone(t.Group);
            return 0;
        }

        t.ClearJobctl(JobControl.TrapMask | JobControl.Listening);
        var group = t.Group;
        if (group.StopStopped || group.GroupStopCount > 0)
        {
            t.SetJobctl(JobControl.StopPending, t.StopSignal == 0 ? Sys.SIGSTOP : 0);
        }

        if (t.State == TaskState.Traced)
        {
            ContinueAfterStop(t, t.LeaveStop(), signal, DeliverSignal);
        }

        return 0;
    }

    private static string Name(int request) => request switch
    {
        Sys.PTRACE_SEIZE => "SEIZE",
        Sys.PTRACE_INTERRUPT => "INTERRUPT",
        Sys.PTRACE_LISTEN => "LISTEN",
        Sys.PTRACE_CONT => "CONT",
        Sys.PTRACE_SYSCALL => "SYSCALL",
        Sys.PTRACE_SINGLESTEP => "SINGLESTEP",
        Sys.PTRACE_DETACH => "DETACH",
        Sys.PTRACE_SETOPTIONS => "SETOPTIONS",
        Sys.PTRACE_KILL => "KILL",
        _ => request.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
