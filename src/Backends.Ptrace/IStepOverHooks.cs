using ProcHex.Ports;

namespace ProcHex.Backends.Ptrace;

/// <summary>
/// The per-OS hooks of <see cref="StepOverPlanner{TRegisters}"/>: the stopped thread's registers in the OS's own
/// layout, the victim's text and data, and the out-of-line step, which only the adapter can do (it depends on how the
/// OS keeps the other threads from running past the restored instruction).
/// </summary>
/// <typeparam name="TRegisters">The OS's register block (Linux <c>user_regs_struct</c>, FreeBSD <c>struct reg</c>).</typeparam>
internal interface IStepOverHooks<TRegisters>
    where TRegisters : struct
{
    /// <summary>Reads the registers of <paramref name="thread"/>, stopped on the trap.</summary>
    TRegisters GetRegisters(int thread);

    /// <summary>Writes the registers of <paramref name="thread"/>; a refusal is a <see cref="TracerException"/>.</summary>
    void SetRegisters(int thread, in TRegisters registers);

    /// <summary>The neutral view of <paramref name="registers"/> the emulator works on.</summary>
    X64Registers ToNeutral(in TRegisters registers);

    /// <summary><paramref name="original"/> with the neutral registers' values; what the neutral form lacks is kept.</summary>
    TRegisters FromNeutral(in X64Registers neutral, in TRegisters original);

    /// <summary>Reads the victim's text at <paramref name="address"/> as it is now (our traps included); the bytes read, 0 when none.</summary>
    int ReadText(ulong address, Span<byte> into);

    /// <summary>Stores <paramref name="bytes"/> in the victim's memory, as the emulated instruction would; a refusal is a <see cref="TracerException"/>.</summary>
    void WriteData(ulong address, ReadOnlySpan<byte> bytes);

    /// <summary>
    /// Runs the original instruction at <paramref name="patch"/> once for <paramref name="thread"/> with the original
    /// byte back and no other thread able to pass the site meanwhile, then plants the trap again if it is still ours.
    /// False when the step ended in another stop the adapter kept for its next wait: the caller must not resume.
    /// </summary>
    bool StepOutOfLine(int thread, BreakpointPatch patch);

    /// <summary>An emulated instruction's effect could not be applied at <paramref name="site"/> (said once per site and image).</summary>
    void EmulationFellBack(ulong site, TracerException error);
}
