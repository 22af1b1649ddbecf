namespace ProcHex.Elf;

/// <summary>
/// An ELF object mapped in a victim, as a backend found it: the backend reads the OS's view of the address space
/// (/proc/PID/maps, the FreeBSD kinfo_vmentry list), parses the image and computes the load bias.
/// </summary>
/// <param name="Path">The path as mapped, or a pseudo-name such as "[vdso]".</param>
/// <param name="LoadBias">Symbol values plus this are addresses (0 for a non-PIE executable).</param>
/// <param name="Start">Lowest address of the object's file mappings.</param>
/// <param name="End">One past the highest address of its file mappings.</param>
/// <param name="Image">The parsed object.</param>
public sealed record MappedObject(string Path, ulong LoadBias, ulong Start, ulong End, ElfFile Image)
{
    /// <summary>The main executable: named "a.out" in lookups and listed first.</summary>
    public bool IsExecutable { get; init; }

    /// <summary>The object's file name without its directory (<c>libc.so.6</c>), as SPECs name it.</summary>
    public string Name => System.IO.Path.GetFileName(Path);

    /// <summary>True when <paramref name="address"/> lies in the object's mapped range.</summary>
    /// <param name="address">An address in the victim.</param>
    public bool Contains(ulong address) => address >= Start && address < End;
}
