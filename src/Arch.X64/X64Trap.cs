namespace ProcHex.Arch.X64;

/// <summary>
/// The software breakpoint of x86-64, in one place for every backend: <c>int3</c> is the one-byte opcode 0xCC, and the
/// trap it raises leaves the program counter just past it, so the breakpoint's address is the PC minus its length.
/// </summary>
internal static class X64Trap
{
    /// <summary>The <c>int3</c> opcode planted over a breakpoint's first byte.</summary>
    public const byte Int3 = 0xCC;

    /// <summary>The length of <see cref="Int3"/> in bytes: what is saved and restored around a breakpoint.</summary>
    public const int Int3Length = 1;

    /// <summary>
    /// The address of the <c>int3</c> that trapped, given the PC the trap left (the kernel reports the PC past the
    /// trap; rewinding it by <see cref="Int3Length"/> lands on the breakpoint's address).
    /// </summary>
    public static ulong TrapSiteFromPc(ulong pcAfterTrap) => pcAfterTrap - Int3Length;
}
