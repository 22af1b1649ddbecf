using ProcHex.Ports;

namespace ProcHex.Backends.FreeBSD;

/// <summary>
/// Gets a thread past the instruction a breakpoint replaced without a step when it can: the shared x86-64
/// <see cref="InstructionEmulator"/> (the one Linux uses: push, mov to the stack, sub/add rsp, lea, the nops, endbr64)
/// executes it in the tracer, one stop per hit. Everything else, and every emulation whose effect cannot be applied,
/// is single-stepped with every other LWP held by PT_SUSPEND (see <see cref="FreeBsdProcess"/>).
/// </summary>
internal static class StepOver
{
    /// <summary>
    /// Emulates the instruction in <paramref name="code"/> (the original bytes at the breakpoint) for
    /// <paramref name="lwp"/>, stopped on the breakpoint with its PC rewound: its store first (PT_IO), then its
    /// registers (PT_SETREGS), so a store that fails leaves the thread as it stopped. False when the instruction is not
    /// modelled or its effect could not be applied: the caller steps it out of line instead (resuming the thread on
    /// its trap would hit it again forever). A thread that is gone throws, as every other request does.
    /// </summary>
    public static bool TryEmulate(PtraceCalls ptrace, int pid, int lwp, ReadOnlySpan<byte> code)
    {
        var regs = ptrace.GetRegs(lwp);
        var emulated = Registers.ToNeutral(regs);
        if (!InstructionEmulator.TryEmulate(ref emulated, code, out var write))
        {
            return false;
        }

        try
        {
            if (write is { } w)
            {
                ptrace.WriteAll(pid, Interop.PiodOp.PIOD_WRITE_D, w.Address, w.Bytes(stackalloc byte[8]));
            }
        }
        catch (TracerException e) when (!e.IsGone)
        {
            // A store the kernel refuses (a stack page not yet there): nothing was changed, so the step can run.
            return false;
        }

        ptrace.SetRegs(lwp, Registers.FromNeutral(emulated, regs));
        return true;
    }
}
