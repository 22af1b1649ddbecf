namespace ProcHex.Elf;

/// <summary>Where to find a victim's r_debug without the help of a symbol table.</summary>
public static class DynamicLinkerState
{
    /// <summary>
    /// The r_debug the executable's DT_DEBUG points at, read from the loaded executable's dynamic section. Null
    /// while the linker has not filled DT_DEBUG in (at the exec stop) and for a static executable.
    /// </summary>
    /// <exception cref="ElfFormatException">The dynamic section or r_debug is not readable.</exception>
    public static RDebug? FindFromExecutable(IVictimMemory memory, MappedObject executable)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(executable);
        if (!executable.Image.TryFindSegment(ElfSegmentType.Dynamic, out var segment))
        {
            return null;
        }

        var dynamic = ElfFile.ReadDynamicSection(memory, unchecked(executable.LoadBias + segment.VirtualAddress));
        foreach (var entry in dynamic)
        {
            if (entry.Tag == ElfDynamicTag.Debug)
            {
                return entry.Value == 0 ? null : RDebug.Read(memory, entry.Value);
            }
        }

        return null;
    }
}
