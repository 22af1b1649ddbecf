using ProcHex.Ports;
using static Interop;

namespace ProcHex.Backends.FreeBSD;

/// <summary>The traps of <see cref="FreeBsdProcess"/>: planting, removing, and telling a trap of ours from the program's.</summary>
internal sealed partial class FreeBsdProcess
{
    public BreakpointPatch PlantBreakpoint(ulong address)
    {
        RequireControl();
        lock (_gate)
        {
            RequireStopped("plant a breakpoint in");
            if (_traps.TryGetOriginal(address, out var known))
            {
                WriteTrap(address);
                return new BreakpointPatch(address, known, 1);
            }

            Span<byte> original = stackalloc byte[1];
            if (_ptrace.Io(Pid, PiodOp.PIOD_READ_I, address, original, out var errno) != 1)
            {
                throw new TracerException(
                    $"cannot read text at 0x{address:x} in pid {Pid}: {Errno.Describe(errno == 0 ? Errno.EFAULT : errno)}", Errno.KindOf(errno == 0 ? Errno.EFAULT : errno), errno);
            }

            WriteTrap(address);
            return _traps.Add(address, original[0]);
        }
    }

    public void RemoveBreakpoint(BreakpointPatch patch)
    {
        RequireControl();
        lock (_gate)
        {
            RequireStopped("remove a breakpoint from");
            if (!_traps.Remove(patch.Address))
            {
                // Planted before an exec: the new image never had it.
                return;
            }

            _ptrace.WriteAll(Pid, PiodOp.PIOD_WRITE_I, patch.Address, [(byte)patch.OriginalBytes]);
        }
    }

    public void StepOverBreakpoint(int threadId, BreakpointPatch patch)
    {
        RequireControl();
        lock (_gate)
        {
            RequireStopped("step over a breakpoint in");
            _stepOver = (threadId, patch);
        }
    }

    private void WriteTrap(ulong address)
    {
        if (!_vforkShared)
        {
            _ptrace.WriteAll(Pid, PiodOp.PIOD_WRITE_I, address, [Int3]);
        }
    }

    byte? ITrapText.ReadByte(ulong address)
    {
        Span<byte> b = stackalloc byte[1];
        return _ptrace.Io(Pid, PiodOp.PIOD_READ_I, address, b, out _) == 1 ? b[0] : null;
    }

    void ITrapText.WriteByte(ulong address, byte value) => _ptrace.WriteAll(Pid, PiodOp.PIOD_WRITE_I, address, [value]);

    /// <summary>
    /// RIP is one past the int3. When the byte before it is (or was, until a removal this stop raced with) one of
    /// our breakpoints, move RIP back so the original instruction runs next; returns the breakpoint address.
    /// A program's own int3 is left alone and its SIGTRAP delivered.
    /// </summary>
    private ulong? RewindIfOurs(int lwp)
    {
        var regs = _ptrace.GetRegs(lwp);
        var address = TrapSiteFromPc((ulong)regs.r_rip);
        if (_traps.Judge(address, this) == TrapVerdict.NotOurs)
        {
            return null;
        }

        regs.r_rip = (long)address;
        _ptrace.SetRegs(lwp, regs);
        return address;
    }
}
