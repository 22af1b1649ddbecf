using ProcHex.Backends.Linux.Symbols;
using ProcHex.Ports;

namespace ProcHex.Backends.Linux;

/// <summary>
/// System calls run by the victim for the tracer (issue 18 item 1; the CRIU "compel" recipe, zero-stop.md): with every
/// thread stopped, one thread's registers are saved, <c>syscall; int3</c> is written at an executable spot, the thread
/// runs it with every blockable signal blocked, and registers, signal mask and text are put back as they were: rax as
/// the thread would have had it on its own (see <see cref="InjectSyscall"/>).
/// </summary>
/// <remarks>
/// orig_rax = -1 keeps a thread stopped inside an interrupted system call from being restarted onto the stub; the saved
/// registers, restored whole, bring the pending restart back. The spot is the executable's entry point (AT_ENTRY), as
/// for <see cref="CallFunction"/>: nobody runs it after start-up, and nobody runs at all meanwhile. Data a call needs
/// (a name) is written right after the stub and restored with it.
/// </remarks>
internal sealed partial class LinuxProcess
{
    private static readonly byte[] SyscallStub = [Int3, 0x0F, 0x05, Int3];

    private static readonly TimeSpan SyscallTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Runs system call <paramref name="number"/> in the victim, from <paramref name="spot"/> (see
    /// <see cref="InjectionSpot"/>, found once for a series of calls); its raw result (-errno on failure). Every thread
    /// must be stopped (after <c>StopAll</c>). The stub is <c>int3; syscall; int3</c>: the thread first leaves the kernel (taking
    /// the result of a system call it stopped in), then runs the call. <paramref name="data"/> is placed after the stub: its address is
    /// <see cref="SyscallScratch"/>(spot). Owner only.
    /// </summary>
    /// <exception cref="InferiorCallException">The thread could not run it (it died, faulted or was stopped by someone).</exception>
    private long InjectSyscall(ulong spot, string name, long number, ReadOnlySpan<ulong> arguments, ReadOnlySpan<byte> data = default)
    {
        _owner.AssertCurrent();
        var thread = InjectionThread();
        var tid = thread.Tid;
        var saved = GetRegs(tid);
        var original = new byte[SyscallStub.Length + data.Length];
        if (ReadWithVmReadv(spot, original, out _) != original.Length)
        {
            throw new InferiorCallException($"pid {Pid}: cannot run {name} in the victim: the text at 0x{spot:x} is not readable");
        }

        var maskSaved = Kernel.GetSignalMask(tid, out var mask) == 0;
        _memory.Write(spot, [.. SyscallStub, .. data]);
        try
        {
            if (maskSaved)
            {
                _ = Kernel.SetSignalMask(tid, ulong.MaxValue);
            }

            // First into user mode at the leading int3: a thread in an event stop (exec, fork, clone) is still inside
            // its system call, whose result the kernel stores in rax only as it returns. That result is what the
            // thread must find when it resumes, so it is what rax gets back.
            var call = saved;
            call.rip = spot;
            call.orig_rax = ulong.MaxValue;
            call.eflags &= ~(DirectionFlag | TrapFlag);
            SetRegs(tid, call);
            saved.rax = RunCall(thread, spot, spot + 1, SyscallTimeout);

            call.rip = spot + 1;
            call.rax = (ulong)number;
            Span<ulong> args = stackalloc ulong[6];
            arguments.CopyTo(args);
            (call.rdi, call.rsi, call.rdx, call.r10, call.r8, call.r9) = (args[0], args[1], args[2], args[3], args[4], args[5]);
            SetRegs(tid, call);
            return (long)RunCall(thread, spot + 1, spot + (ulong)SyscallStub.Length, SyscallTimeout);
        }
        catch (InferiorCallException e)
        {
            throw new InferiorCallException($"pid {Pid}: {name} could not be run in the victim: {e.Message}", e.Kind, e.ErrorNumber);
        }
        finally
        {
            if (!_dead && _threads.ContainsKey(tid))
            {
                SetRegs(tid, saved);
                if (maskSaved)
                {
                    _ = Kernel.SetSignalMask(tid, mask);
                }

                _memory.Write(spot, original);
            }
        }
    }

    /// <summary>Where data passed to <see cref="InjectSyscall"/> lies in the victim for a call at <paramref name="spot"/>.</summary>
    private static ulong SyscallScratch(ulong spot) => spot + (ulong)SyscallStub.Length;

    /// <summary>The stopped thread that runs injected calls: the one whose stop is being answered, else any.</summary>
    private VictimThread InjectionThread()
    {
        if (_threads.TryGetValue(_currentTid, out var current) && !current.Running && !_owner.HasPendingStatus(current.Tid))
        {
            return current;
        }

        return _threads.Values.FirstOrDefault(t => !t.Running && !_owner.HasPendingStatus(t.Tid))
            ?? throw new InferiorCallException($"pid {Pid}: no thread is stopped to run a system call", TracerErrorKind.Busy);
    }

    /// <summary>The executable's entry point, run once at start-up; else the first executable file mapping.</summary>
    private ulong InjectionSpot()
    {
        if (Symbols is ProcMapsSymbolTable { Auxv.Entry: not 0 and var entry })
        {
            return entry;
        }

        foreach (var mapping in ProcMaps.ReadOrThrow(Kernel, Pid))
        {
            if (mapping.IsExecutable && mapping.IsFile)
            {
                return mapping.Start;
            }
        }

        throw new InferiorCallException($"pid {Pid}: no executable text to run a system call from", TracerErrorKind.NotFound);
    }
}
