namespace ProcHex.Elf;

/// <summary>Reads a victim's memory. Backends implement it over process_vm_readv, /proc/PID/mem or PT_IO.</summary>
public interface IVictimMemory
{
    /// <summary>Reads up to <paramref name="destination"/>.Length bytes at <paramref name="address"/>; returns how many were read.</summary>
    int Read(ulong address, Span<byte> destination);
}
