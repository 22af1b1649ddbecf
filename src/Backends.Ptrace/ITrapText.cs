using ProcHex.Ports;

namespace ProcHex.Backends.Ptrace;

/// <summary>
/// The per-OS hook of <see cref="TrapTable"/>: the victim's text, one byte at a time (Linux: process_vm_readv and
/// /proc/PID/mem; FreeBSD: PT_IO on the I space).
/// </summary>
internal interface ITrapText
{
    /// <summary>The byte at <paramref name="address"/> as the victim sees it now; null when it cannot be read.</summary>
    byte? ReadByte(ulong address);

    /// <summary>Writes <paramref name="value"/> at <paramref name="address"/>; a failure is a <see cref="TracerException"/>.</summary>
    void WriteByte(ulong address, byte value);
}
