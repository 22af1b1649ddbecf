namespace ProcHex.Backends.Linux;

/// <summary>
/// The kernel calls of <see cref="LinuxProcess"/>, under the names and shapes its code uses, made through its
/// owner's <see cref="ILinuxKernel"/>: so a fake kernel stands in for every one of them.
/// </summary>
internal sealed partial class LinuxProcess
{
    private ILinuxKernel Kernel => _owner.Kernel;

    /// <summary>
    /// A ptrace request whose failure the caller handles: returns 0 or the errno. A request that lets the thread run
    /// (or go) forgets its registers, and notes the PC it runs from when they were known.
    /// </summary>
    private int TryPtrace(int request, int tid, nint address, nint data)
    {
        if (request is Interop.Sys.PTRACE_CONT or Interop.Sys.PTRACE_SINGLESTEP or Interop.Sys.PTRACE_DETACH or Interop.Sys.PTRACE_LISTEN or Interop.Sys.PTRACE_SYSCALL
            && _threads.TryGetValue(tid, out var thread))
        {
            thread.ResumedAt = thread.RegistersKnown ? thread.Registers.rip : VictimThread.UnknownPc;
            thread.RegistersKnown = false;
        }

        return Kernel.Ptrace(request, tid, address, data);
    }

    /// <summary>May we, as this victim's tracer, still access its memory? 0, or the errno (EIO when not).</summary>
    private int TryPeekData(int tid, ulong address) => Kernel.PeekData(tid, address);

    /// <summary>PTRACE_GETREGS, once per stop: later reads answer from the thread's <see cref="VictimThread.Registers"/>.</summary>
    private Interop.UserRegs GetRegs(int tid)
    {
        var known = _threads.TryGetValue(tid, out var thread);
        if (known && thread!.RegistersKnown)
        {
            return thread.Registers;
        }

        var regs = Kernel.ReadRegs(tid);
        if (known)
        {
            thread!.Registers = regs;
            thread.RegistersKnown = true;
        }

        return regs;
    }

    /// <summary>
    /// Forgets the registers read in <paramref name="tid"/>'s stop, for code that then drives the thread through the
    /// kernel itself on the owner (the emulator's test single-steps it). Owner only.
    /// </summary>
    internal void ForgetRegisters(int tid)
    {
        _owner.AssertCurrent();
        if (_threads.TryGetValue(tid, out var thread))
        {
            thread.RegistersKnown = false;
        }
    }

    /// <summary>PTRACE_SETREGS, remembered for the rest of the stop.</summary>
    private void SetRegs(int tid, in Interop.UserRegs regs)
    {
        Kernel.WriteRegs(tid, regs);
        if (_threads.TryGetValue(tid, out var thread))
        {
            thread.Registers = regs;
            thread.RegistersKnown = true;
        }
    }

    /// <summary>The new tid or child pid of a clone, fork or vfork event; 0 when it cannot be read.</summary>
    private ulong GetEventMessage(int tid) => Kernel.GetEventMessage(tid, out var message) == 0 ? message : 0;

    /// <summary>The si_code of the signal <paramref name="tid"/> is stopped for, or null when it cannot be read.</summary>
    private int? GetSignalCode(int tid) => Kernel.GetSigInfo(tid, out var info) == 0 ? info.Code : null;

    private bool HasPendingKernelTrap(int tid) => Kernel.HasPendingKernelTrap(tid);

    /// <summary>0 or the errno; every caller here discards it.</summary>
    private int Kill(int pid, int signal) => Kernel.Kill(pid, signal);

    private int ReadWithVmReadv(ulong address, Span<byte> destination, out int errno) =>
        Kernel.ProcessVmReadv(Pid, address, destination, out errno);
}
