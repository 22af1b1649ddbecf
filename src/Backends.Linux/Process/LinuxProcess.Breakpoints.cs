using ProcHex.Ports;
using ProcHex.Elf;
using static ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux;

/// <summary>
/// The traps of <see cref="LinuxProcess"/>: planting, removing, and telling a trap of ours from the program's.
/// </summary>
internal sealed partial class LinuxProcess
{
    /// <summary>Up to <see cref="StartCode.WindowSize"/> bytes of text at <paramref name="address"/> as they were before our breakpoints.</summary>
    private byte[] ReadOriginalText(ulong address)
    {
        var text = new byte[StartCode.WindowSize];
        var n = ReadMemory(address, text);
        return _owner.Invoke(() =>
        {
            _traps.Overlay(address, text.AsSpan(0, n));
            OverlayCounterEntries(address, text.AsSpan(0, n));
            return text[..n];
        });
    }

    public BreakpointPatch PlantBreakpoint(ulong address)
    {
        ThrowIfReadOnly();
        return _owner.Invoke(() =>
        {
            if (_traps.TryGetOriginal(address, out var known))
            {
                return new BreakpointPatch(address, known, 1);
            }

            if (_counters.Overlapping(address, address + 1) is { } counter)
            {
                throw new TracerException($"pid {Pid}: 0x{address:x} lies in the jump of the in-victim counter of 0x{counter.Entry:x}; remove the counter first", TracerErrorKind.Busy);
            }

            Span<byte> original = stackalloc byte[1];
            if (ReadMemory(address, original) != 1)
            {
                throw new TracerException($"pid {Pid}: no memory at 0x{address:x} for a breakpoint", TracerErrorKind.BadAddress, Interop.Errno.EFAULT);
            }

            _memory.Write(address, [Int3]);
            return _traps.Add(address, original[0]);
        });
    }

    public void RemoveBreakpoint(BreakpointPatch patch)
    {
        ThrowIfReadOnly();
        _owner.Invoke(() =>
        {
            // After exec the address belongs to a new image: forgetting is all that is left to do. So it is after an
            // exec we did not see (OnImageGone): the trap went with the image it was planted in.
            if (_traps.Remove(patch.Address) && !_dead && !_lost)
            {
                try
                {
                    _memory.Write(patch.Address, [(byte)patch.OriginalBytes]);
                }
                catch (TracerException) when (_lost)
                {
                }
            }
        });
    }

    /// <summary>
    /// The port asks for the original instruction to run once at the next <see cref="Resume"/>, and that is where
    /// it runs: a hit then costs one trip to the owner instead of two.
    /// </summary>
    public void StepOverBreakpoint(int threadId, BreakpointPatch patch)
    {
        ThrowIfReadOnly();
        _pendingStep = (threadId, patch);
    }

    /// <summary>
    /// A SIGTRAP stop: one of our traps (rewound and reported, or let run again when the core just removed it), or the
    /// program's own. The PC alone tells a hit when it is one past a trap we planted and the thread moved since it was
    /// resumed: only an int3 leaves it there then (one register read, no siginfo). A thread resumed right there (past a
    /// one-byte instruction we emulated) has not moved for certain, so its siginfo says: a SIGTRAP someone sent would
    /// stop it at the same PC.
    /// </summary>
    private void OnTrap(VictimThread thread)
    {
        var regs = GetRegs(thread.Tid);
        var address = TrapSiteFromPc(regs.rip);
        var verdict = _traps.Contains(address) && thread.ResumedAt != regs.rip ? TrapVerdict.Ours
            : GetSignalCode(thread.Tid) == SI_KERNEL ? _traps.Judge(address, this)
            : TrapVerdict.NotOurs;
        if (verdict != TrapVerdict.NotOurs)
        {
            // Ours, or ours until the core removed it a moment ago: either way the original instruction must run
            // again, so the PC goes back to the breakpoint before anything else happens. Written now, not with the
            // step-over's registers: the core may hold the thread here (a stop at main, a client's stop), and a
            // victim whose tracer is killed then must meet the int3 again, not run on from the middle of the text.
            regs.rip = address;
            SetRegs(thread.Tid, regs);
            if (verdict == TrapVerdict.Ours)
            {
                Deliver(StopEvent.Stopped(StopReason.Breakpoint, thread.Tid, address), thread);
            }
            else
            {
                ResumeIfFree(thread);
            }

            return;
        }

        // A SIGTRAP someone sent, or an int3 compiled into the program: the program's business.
        thread.InjectSignal = SIGTRAP;
        ResumeIfFree(thread);
    }

    byte? ITrapText.ReadByte(ulong address)
    {
        Span<byte> b = stackalloc byte[1];
        return ReadWithVmReadv(address, b, out _) == 1 ? b[0] : null;
    }

    void ITrapText.WriteByte(ulong address, byte value) => _memory.Write(address, [value]);
}
