using static ProcHex.Elf.ElfConstants;

namespace ProcHex.Elf;

/// <summary>The function extents of the object's unwind table, read the first time they are asked for.</summary>
public sealed partial class ElfFile
{
    private readonly Lazy<FunctionExtents> _functionExtents;

    /// <summary>
    /// The functions the object's .eh_frame describes (start and length, link-time addresses): what a stripped object
    /// still says about where its functions begin and end. Read once, on first use (a file is reopened for it, and must
    /// be the same file: same length and modification time); empty when the object has no readable unwind table, or
    /// was read from a victim's memory without its sections.
    /// </summary>
    internal FunctionExtents FunctionExtents => _functionExtents.Value;

    /// <summary>
    /// How to read the extents later: .eh_frame by its section header, or, when the object has no section headers,
    /// through PT_GNU_EH_FRAME (.eh_frame_hdr), whose eh_frame_ptr gives the table's address (its size is then the
    /// rest of the segment that loads it; the table's zero terminator ends it). Never throws: an object whose table
    /// cannot be found has none.
    /// </summary>
    private static Func<FunctionExtents> PrepareExtents(ElfSource source, ElfProgramHeader[] segments, ElfSection[] sections, ElfDynamicEntry[] dynamic)
    {
        try
        {
            var text = Array.FindIndex(sections, s => s.Name == ".text");
            var bases = new PointerBases(
                text >= 0 ? sections[text].Address : null,
                TryGetDynamic(dynamic, DT_PLTGOT, out var got) ? got : null);
            var index = Array.FindIndex(sections, s => s.Name == ".eh_frame" && s.Type != SHT_NOBITS && s.Size != 0);
            if (index >= 0)
            {
                var table = sections[index];
                return Later(source.ReadLater(table.Offset, table.Size, ".eh_frame", MaxTableBytes), table.Address, bases);
            }

            if (sections.Length == 0 && TryFindSegment(segments, PT_GNU_EH_FRAME, out var header) && FindTable(source, segments, header) is var (offset, size, address))
            {
                return Later(source.ReadLater(offset, size, ".eh_frame (from PT_GNU_EH_FRAME)", MaxTableBytes), address, bases);
            }
        }
        catch (ElfFormatException)
        {
            // An .eh_frame_hdr we cannot read: no extents, as for an object without one.
        }

        return static () => FunctionExtents.Empty;
    }

    private static Func<FunctionExtents> Later(Func<byte[]?> read, ulong address, PointerBases bases) =>
        () => read() is { } bytes ? EhFrame.Parse(bytes, address, bases) : FunctionExtents.Empty;

    /// <summary>
    /// Where .eh_frame_hdr (version 1) says .eh_frame is: its file offset, the bytes from there to the end of the
    /// segment, and its address.
    /// </summary>
    private static (ulong Offset, ulong Size, ulong Address)? FindTable(ElfSource source, ElfProgramHeader[] segments, ElfProgramHeader header)
    {
        var bytes = source.ReadArray(header.Offset, Math.Min(header.FileSize, 16), ".eh_frame_hdr", 16);
        if (bytes.Length < 4 || bytes[0] != 1)
        {
            return null;
        }

        var position = 4;
        var bases = new PointerBases(null, header.VirtualAddress);
        if (!EhFrame.TryReadPointer(bytes, ref position, bytes.Length, bytes[1], header.VirtualAddress, bases, out var address))
        {
            return null;
        }

        foreach (var segment in segments)
        {
            if (segment.IsLoad && address >= segment.VirtualAddress && address - segment.VirtualAddress < segment.FileSize)
            {
                var into = address - segment.VirtualAddress;
                return (segment.Offset + into, segment.FileSize - into, address);
            }
        }

        return null;
    }
}
