using System.Buffers.Binary;
using System.Diagnostics;
using ProcHex.Backends.Linux.Symbols;
using ProcHex.Ports;
using static ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux;

/// <summary>
/// Inferior calls: running one function of the victim on one of its threads and taking what it returns, the way gdb's
/// <c>call_function_by_hand</c> does. The core uses it to ask a GNU indirect function's resolver which implementation it
/// chose (issue 17, item 1).
/// </summary>
/// <remarks>
/// <para><b>Threads and locks.</b> The call is port work like a step over a breakpoint: it runs on the
/// <see cref="OwnerThread"/> (the only thread that may ptrace the victim), marshalled there by <see cref="CallFunction"/>,
/// and touches only owner-owned state (the thread table, the planted-trap map), so it takes no lock of its own. The core
/// calls it with the victim lock held, from a stop it is handling or while the victim is parked: nobody else resumes
/// the victim meanwhile. It nests nothing: no core lock is taken, no callback runs, and the victim's event lock is not
/// held across any ptrace call (a status another thread reports meanwhile is kept by the owner, as in any sub-wait, and
/// dispatched after).</para>
/// <para><b>All-stop for its duration.</b> Every other thread is stopped first (<c>StopAll</c>, as for a step out of
/// line) and stays held until the core's next <see cref="Resume"/>; the calling thread is the one that reported the last
/// stop. Every planted trap is taken out of the text for the call (so the function never meets one of ours and nobody
/// misses a hit, since nobody else runs) and put back after.</para>
/// <para><b>The frame.</b> The thread's registers are saved whole (the general ones and the XSAVE area: a resolver
/// compiled with vector instructions may use xmm/ymm registers); the call gets rip = the function, rdi = AT_HWCAP
/// (what gdb passes; glibc's x86-64 <c>elf_ifunc_invoke</c> passes nothing, and its resolvers read cpu_features instead,
/// so the argument is harmless), rax = 0, DF and TF clear, orig_rax = -1 (so a thread stopped inside a system call is
/// not restarted into it by the resume), and rsp 16-byte aligned below the red zone minus one push: the return address,
/// AT_ENTRY. The executable's entry point runs once, at startup, before main and before any thread exists, so a trap
/// there is met by nobody but our returning call (gdb's choice too); at a stop before the entry point ran its original
/// byte is back before anyone runs. The stack below the old rsp that the call may use is saved and written back, so
/// registers, stack and text are exactly as they were.</para>
/// <para><b>Bounded.</b> A resolver returns in microseconds, but a broken one may loop: the owner polls for the thread's
/// stop (a blocking wait could not be abandoned; the owner is the only thread that can interrupt the callee), and after
/// the timeout interrupts it, restores it and fails. A fault (SIGSEGV and friends) is taken, not delivered: the thread is
/// restored and the call fails with the signal and address. Any other signal that arrives meanwhile is kept for the
/// thread's next resume, as a step out of line does.</para>
/// </remarks>
internal sealed partial class LinuxProcess
{
    /// <summary>The x86-64 red zone plus some slack: the call's frame starts below what the interrupted code may use.</summary>
    private const ulong CallFrameGap = 256;

    /// <summary>How much stack below the frame is saved and restored: a resolver's own frames, ld.so's lazy-binding save area included.</summary>
    private const int CallStackScratch = 32 * 1024;

    private const ulong DirectionFlag = 0x400;
    private const ulong TrapFlag = 0x100;

    public ulong CallFunction(ulong address, TimeSpan timeout)
    {
        ThrowIfReadOnly();
        var entry = Symbols is ProcMapsSymbolTable table ? table.Auxv : default;
        return _owner.Invoke(() => CallOnOwner(address, entry, timeout));
    }

    private ulong CallOnOwner(ulong address, ProcAuxv auxv, TimeSpan timeout)
    {
        if (_dead || _released || _lost)
        {
            throw new InferiorCallException($"pid {Pid}: cannot call 0x{address:x}, the process is no longer controlled");
        }

        if (auxv.Entry == 0)
        {
            throw new InferiorCallException($"pid {Pid}: cannot call 0x{address:x}: the entry point (AT_ENTRY), where the call returns to, is unknown");
        }

        var tid = _currentTid;
        _ = StopAll();
        if (!_threads.TryGetValue(tid, out var thread) || thread.Running || _owner.HasPendingStatus(tid))
        {
            throw new InferiorCallException($"pid {Pid}: cannot call 0x{address:x}: thread {tid} is not stopped");
        }

        var saved = GetRegs(tid);
        var vector = SaveExtendedState(tid);
        var returnAddress = auxv.Entry;
        var frame = ((saved.rsp - CallFrameGap) & ~0xfUL) - 8;
        var stack = SaveStack(frame - CallStackScratch, saved.rsp);
        var text = TakeTrapsOut();
        Span<byte> original = stackalloc byte[1];
        var returnByte = text.TryGetValue(returnAddress, out var planted) ? planted
            : ReadWithVmReadv(returnAddress, original, out _) == 1 ? original[0]
            : throw new InferiorCallException($"pid {Pid}: cannot call 0x{address:x}: the entry point 0x{returnAddress:x} is not readable");
        var restored = false;
        try
        {
            Span<byte> word = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(word, returnAddress);
            _memory.Write(frame, word);
            _memory.Write(returnAddress, [Int3]);

            var call = saved;
            call.rip = address;
            call.rsp = frame;
            call.rdi = auxv.Hwcap;
            call.rsi = 0;
            call.rax = 0;
            call.orig_rax = ulong.MaxValue;
            call.eflags &= ~(DirectionFlag | TrapFlag);
            SetRegs(tid, call);
            var result = RunCall(thread, address, returnAddress + 1, timeout);
            Restore(tid, saved, vector, stack);
            restored = true;
            return result;
        }
        finally
        {
            if (!_dead && _threads.ContainsKey(tid))
            {
                if (!restored)
                {
                    Restore(tid, saved, vector, stack);
                }

                _memory.Write(returnAddress, [returnByte]);
                foreach (var trap in text.Keys)
                {
                    _memory.Write(trap, [Int3]);
                }
            }
        }
    }

    /// <summary>Runs the thread until it returns to <paramref name="returned"/> (just past the trap); its rax then.</summary>
    private ulong RunCall(VictimThread thread, ulong address, ulong returned, TimeSpan timeout)
    {
        var tid = thread.Tid;
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        var interrupted = false;
        while (true)
        {
            if (TryPtrace(PTRACE_CONT, tid, 0, 0) != 0)
            {
                throw new InferiorCallException($"pid {Pid}: cannot call 0x{address:x}: thread {tid} could not be resumed");
            }

            thread.Running = true;
            var status = AwaitCallStop(tid, deadline, ref interrupted);
            if (status is not { } s || s.Ended)
            {
                ThreadEnded(thread, status ?? new WaitStatus(0));
                throw new InferiorCallException($"pid {Pid}: thread {tid} ended while calling 0x{address:x}");
            }

            thread.Running = false;
            if (s.Event == PTRACE_EVENT_STOP && s.StopSignal == SIGTRAP)
            {
                if (interrupted)
                {
                    throw new InferiorCallException($"pid {Pid}: the function at 0x{address:x} did not return within {timeout.TotalSeconds:0.###} s");
                }

                // A PTRACE_INTERRUPT left pending by the stop-all: not ours to answer, run on.
                continue;
            }

            if (s.Event != 0)
            {
                // A group-stop (someone stopped the process) or a clone, fork or exec in the function: abandon the call
                // and let the machinery that knows these stops have it, once the thread is itself again.
                _owner.Dispatch(tid, s);
                throw new InferiorCallException($"pid {Pid}: the call of 0x{address:x} was interrupted ({s})");
            }

            var regs = GetRegs(tid);
            if (s.StopSignal == SIGTRAP && regs.rip == returned)
            {
                return regs.rax;
            }

            if (s.StopSignal is SIGTRAP or SIGSEGV or SIGBUS or SIGILL or SIGFPE or SIGABRT or SIGSYS)
            {
                throw new InferiorCallException($"pid {Pid}: the function at 0x{address:x} faulted with signal {s.StopSignal} at 0x{regs.rip:x}");
            }

            // Someone else's signal: delivered when the thread really resumes, not into the call.
            if (thread.InjectSignal == 0)
            {
                thread.InjectSignal = s.StopSignal;
            }
        }
    }

    /// <summary>
    /// The thread's next status, polled until <paramref name="deadline"/>; past it the thread is interrupted once
    /// (<paramref name="interrupted"/>) and its stop awaited.
    /// </summary>
    private WaitStatus? AwaitCallStop(int tid, long deadline, ref bool interrupted)
    {
        while (!interrupted && !_owner.HasPendingStatus(tid, askKernel: true))
        {
            if (Stopwatch.GetTimestamp() > deadline)
            {
                interrupted = true;
                _ = TryPtrace(PTRACE_INTERRUPT, tid, 0, 0);
                break;
            }

            Kernel.Sleep(1);
        }

        return _owner.WaitFor(tid);
    }

    private void Restore(int tid, in Interop.UserRegs saved, byte[]? vector, List<(ulong Address, byte[] Bytes)> stack)
    {
        SetRegs(tid, saved);
        if (vector is not null && Kernel.SetExtendedState(tid, vector) is var errno and not 0)
        {
            throw new InferiorCallException($"pid {Pid}: thread {tid}'s vector registers could not be restored after a call", Interop.Errno.KindOf(errno), errno);
        }

        foreach (var (address, bytes) in stack)
        {
            _memory.Write(address, bytes);
        }
    }

    /// <summary>The x87/SSE/AVX state (the XSAVE area; 16 KiB holds any current CPU's); null when the kernel will not say.</summary>
    private byte[]? SaveExtendedState(int tid)
    {
        var buffer = new byte[16 * 1024];
        return Kernel.GetExtendedState(tid, buffer, out var length) == 0 ? buffer[..length] : null;
    }

    /// <summary>The readable pages of [<paramref name="low"/>, <paramref name="high"/>), read from the top down.</summary>
    private List<(ulong Address, byte[] Bytes)> SaveStack(ulong low, ulong high)
    {
        var saved = new List<(ulong, byte[])>();
        var end = high;
        while (end > low)
        {
            var start = Math.Max(low, (end - 1) & ~0xfffUL);
            var bytes = new byte[end - start];
            if (ReadWithVmReadv(start, bytes, out _) != bytes.Length)
            {
                break;
            }

            saved.Add((start, bytes));
            end = start;
        }

        return saved;
    }

    /// <summary>Writes the original bytes of every planted trap back; returns what to plant again.</summary>
    private Dictionary<ulong, byte> TakeTrapsOut()
    {
        var text = new Dictionary<ulong, byte>(_traps.Planted);
        foreach (var (address, original) in text)
        {
            _memory.Write(address, [original]);
        }

        return text;
    }
}
