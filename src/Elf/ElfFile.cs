using System.Buffers.Binary;
using System.Text;
using static ProcHex.Elf.ElfConstants;

namespace ProcHex.Elf;

/// <summary>
/// A parsed ELF64 little-endian object: headers, segments, sections, the dynamic section and the defined symbols.
/// Parsing copies what it needs, so the object holds no file handle or victim and is immutable (safe to share
/// between threads and victims).
/// </summary>
/// <remarks>
/// Every size and offset read from the image is checked before use; anything inconsistent ends in an
/// <see cref="ElfFormatException"/> naming the image and the part. Counts are capped (<see cref="ElfConstants"/>)
/// so a hostile header cannot make us allocate gigabytes or loop for ever; lists are read by count, never by
/// following links inside the image.
/// </remarks>
public sealed partial class ElfFile
{
    private static readonly byte[] Magic = [0x7f, (byte)'E', (byte)'L', (byte)'F'];

    private readonly ElfProgramHeader[] _programHeaders;
    private readonly ElfDynamicEntry[] _dynamic;

    private ElfFile(
        string name,
        ElfHeader header,
        ElfProgramHeader[] programHeaders,
        ElfSection[] sections,
        ElfDynamicEntry[] dynamic,
        string? interpreter,
        string? soName,
        ElfSymbolTable symbols,
        ElfRelocation[] relocations,
        Func<FunctionExtents>? extents = null)
    {
        _functionExtents = new Lazy<FunctionExtents>(extents ?? (static () => FunctionExtents.Empty), LazyThreadSafetyMode.ExecutionAndPublication);
        Relocations = relocations;
        LazyBindingStubs = [.. sections.Where(s => s.Name is ".plt" or ".plt.sec" or ".plt.got" or ".iplt").Select(s => (s.Address, s.Size))];
        Name = name;
        Header = header;
        _programHeaders = programHeaders;
        _dynamic = dynamic;
        Sections = sections;
        Interpreter = interpreter;
        SoName = soName;
        Symbols = symbols;
    }

    /// <summary>Where it was read from, for messages.</summary>
    public string Name { get; }

    /// <summary>The file header (class, type, machine, entry point).</summary>
    public ElfHeader Header { get; }

    /// <summary>The program headers: the segments a loader maps.</summary>
    public IReadOnlyList<ElfProgramHeader> ProgramHeaders => _programHeaders;

    /// <summary>Section headers; empty when read from a loaded image (sections are not mapped).</summary>
    public IReadOnlyList<ElfSection> Sections { get; }

    /// <summary>
    /// The GLOB_DAT, JUMP_SLOT and IRELATIVE relocations of the object's RELA sections (read from the section headers;
    /// empty when the image was read from memory).
    /// </summary>
    public IReadOnlyList<ElfRelocation> Relocations { get; }

    /// <summary>
    /// The PLT sections (linked addresses and sizes): a GOT slot that still points in here has not been bound yet.
    /// </summary>
    public IReadOnlyList<(ulong Address, ulong Size)> LazyBindingStubs { get; }

    /// <summary>The dynamic section up to DT_NULL; empty for a static executable.</summary>
    public IReadOnlyList<ElfDynamicEntry> DynamicEntries => _dynamic;

    /// <summary>PT_INTERP: the dynamic linker the executable asks for; null when statically linked (or a library).</summary>
    public string? Interpreter { get; }

    /// <summary>DT_SONAME, when the file has one and it could be read.</summary>
    public string? SoName { get; }

    /// <summary>Defined symbols of .symtab and .dynsym together.</summary>
    public ElfSymbolTable Symbols { get; }

    /// <summary>ET_DYN: loaded at a bias chosen at run time (a shared library or a PIE).</summary>
    public bool IsPositionIndependent => Header.Type == ElfType.SharedObject;

    /// <summary>True when <paramref name="bytes"/> starts with the ELF magic.</summary>
    public static bool HasElfMagic(ReadOnlySpan<byte> bytes) => bytes.StartsWith(Magic);

    /// <summary>Reads the file at <paramref name="path"/>; only headers, symbol and string tables are loaded.</summary>
    /// <exception cref="ElfFormatException">The file is not a well-formed ELF64 little-endian object.</exception>
    /// <exception cref="IOException">The file could not be opened or read.</exception>
    public static ElfFile Open(string path)
    {
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var length = RandomAccess.GetLength(file);
        return Parse(new FileElfSource(path, file, (ulong)length));
    }

    /// <summary>Parses an image held in memory.</summary>
    /// <exception cref="ElfFormatException">The image is not a well-formed ELF64 little-endian object.</exception>
    public static ElfFile Parse(ReadOnlyMemory<byte> image, string name) => Parse(new ArrayElfSource(name, image));

    /// <summary>
    /// Parses an image that a victim has mapped whole, laid out as in its file (the vDSO): file offset N is at
    /// <paramref name="address"/> + N, and nothing past <paramref name="length"/> is read.
    /// </summary>
    /// <exception cref="ElfFormatException">Malformed, or a part of it is not readable.</exception>
    public static ElfFile ReadImage(IVictimMemory memory, ulong address, ulong length, string name)
    {
        ArgumentNullException.ThrowIfNull(memory);
        return Parse(new MemoryElfSource(name, memory, address, Math.Min(length, ulong.MaxValue - address)));
    }

    /// <summary>
    /// Reads an object as the dynamic linker loaded it, from the address where its first page (file offset 0) is
    /// mapped: the ELF and program headers there, then the dynamic section and, through DT_SYMTAB, DT_STRTAB and
    /// DT_HASH or DT_GNU_HASH, the dynamic symbols. For objects whose file we cannot open (deleted, another
    /// mount namespace). Sections and .symtab are not mapped, so only .dynsym is known.
    /// </summary>
    /// <exception cref="ElfFormatException">Malformed, or a part of it is not readable.</exception>
    public static ElfFile ReadLoaded(IVictimMemory memory, ulong address, string name)
    {
        ArgumentNullException.ThrowIfNull(memory);
        var image = new MemoryElfSource(name, memory, address, ulong.MaxValue - address);
        var space = new MemoryElfSource(name, memory, 0, ulong.MaxValue);
        var header = ReadHeader(image);
        var segments = ReadProgramHeaders(image, header);

        if (!TryFindLoadSegment(segments, 0, out var first))
        {
            throw image.Error("no loadable segment maps the start of the file");
        }

        var bias = unchecked(address - (first.VirtualAddress - first.Offset));
        var (low, high) = LoadedExtent(segments, bias);

        ElfDynamicEntry[] dynamic = [];
        if (TryFindSegment(segments, PT_DYNAMIC, out var dynamicSegment))
        {
            dynamic = ReadDynamicEntries(space, unchecked(bias + dynamicSegment.VirtualAddress), dynamicSegment.MemorySize);
        }

        string? interpreter = null;
        if (TryFindSegment(segments, PT_INTERP, out var interp))
        {
            interpreter = ReadTerminatedString(space, unchecked(bias + interp.VirtualAddress), Math.Min(interp.MemorySize, MaxInterpreterLength), "PT_INTERP");
        }

        // glibc relocates the pointers in .dynamic of what it loads; the kernel does not for the vDSO, nor do some
        // architectures' linkers: a pointer already inside the object is an address, anything else is a vaddr.
        ulong Relocate(ulong pointer) => pointer >= low && pointer < high ? pointer : unchecked(bias + pointer);

        var symbols = ElfSymbolTable.Empty;
        string? soName = null;
        if (TryGetDynamic(dynamic, DT_SYMTAB, out var symtab) && TryGetDynamic(dynamic, DT_STRTAB, out var strtab))
        {
            var stringsSize = TryGetDynamic(dynamic, DT_STRSZ, out var strsz) ? strsz : throw image.Error("DT_STRTAB without DT_STRSZ");
            var strings = space.ReadArray(Relocate(strtab), stringsSize, "dynamic string table (DT_STRTAB)", MaxStringTableSize);
            var entrySize = TryGetDynamic(dynamic, DT_SYMENT, out var syment) ? syment : Elf64SymbolSize;
            if (entrySize < Elf64SymbolSize || entrySize > 1024)
            {
                throw image.Error($"DT_SYMENT is {entrySize}, not a plausible ELF64 symbol size");
            }

            var count = CountDynamicSymbols(space, dynamic, Relocate, Relocate(symtab), Relocate(strtab), entrySize);
            var table = space.ReadArray(Relocate(symtab), count * entrySize, "dynamic symbol table (DT_SYMTAB)", MaxTableBytes);
            var list = new List<ElfSymbol>((int)count);
            DecodeSymbols(image, table, (int)entrySize, strings, "dynamic symbol", list);
            symbols = new ElfSymbolTable(list);
            if (TryGetDynamic(dynamic, DT_SONAME, out var soNameOffset) && soNameOffset < (ulong)strings.Length)
            {
                soName = DecodeString(image, strings, soNameOffset, "DT_SONAME");
            }
        }

        return new ElfFile(name, header, segments, [], dynamic, interpreter, soName, symbols, []);
    }

    /// <summary>
    /// Reads a dynamic section in a victim's memory up to DT_NULL (at most <paramref name="maxEntries"/>). Used on
    /// a loaded executable to find DT_DEBUG, which the dynamic linker fills in at run time.
    /// </summary>
    /// <exception cref="ElfFormatException">Not readable, or no DT_NULL within the limit.</exception>
    public static IReadOnlyList<ElfDynamicEntry> ReadDynamicSection(IVictimMemory memory, ulong address, int maxEntries = MaxDynamicEntries)
    {
        ArgumentNullException.ThrowIfNull(memory);
        var space = new MemoryElfSource($"dynamic section at 0x{address:x}", memory, 0, ulong.MaxValue);
        return ReadDynamicEntries(space, address, (ulong)Math.Clamp(maxEntries, 1, MaxDynamicEntries) * Elf64DynamicSize);
    }

    /// <summary>The PT_LOAD segment whose file range holds <paramref name="fileOffset"/> (from its page start).</summary>
    public bool TryFindLoadSegment(ulong fileOffset, out ElfProgramHeader segment) =>
        TryFindLoadSegment(_programHeaders, fileOffset, out segment);

    /// <summary>
    /// The load bias given one mapping of the file: <paramref name="mappingStart"/> maps file offset
    /// <paramref name="mappingOffset"/>. A segment's file bytes at offset O live at bias + p_vaddr + (O - p_offset),
    /// so bias = start - offset - (p_vaddr - p_offset); the kernel keeps p_vaddr and p_offset congruent modulo the
    /// page size, so the page-rounded mapping gives the same answer. 0 for a non-PIE executable.
    /// </summary>
    public bool TryComputeLoadBias(ulong mappingStart, ulong mappingOffset, out ulong bias)
    {
        if (!TryFindLoadSegment(mappingOffset, out var segment))
        {
            bias = 0;
            return false;
        }

        bias = unchecked(mappingStart - mappingOffset - (segment.VirtualAddress - segment.Offset));
        return true;
    }

    /// <summary>The first program header of <paramref name="type"/> (see <see cref="ElfSegmentType"/>).</summary>
    public bool TryFindSegment(uint type, out ElfProgramHeader segment) => TryFindSegment(_programHeaders, type, out segment);

    /// <summary>The first dynamic entry with <paramref name="tag"/>.</summary>
    public bool TryGetDynamic(long tag, out ulong value) => TryGetDynamic(_dynamic, tag, out value);

    /// <inheritdoc/>
    public override string ToString() => $"{Name} ({Header.Type}, {ProgramHeaders.Count} segments, {Symbols.Count} symbols)";

    private static ElfFile Parse(ElfSource source)
    {
        var header = ReadHeader(source);
        var segments = ReadProgramHeaders(source, header);
        var sections = ReadSections(source, header);

        var list = new List<ElfSymbol>();
        for (var i = 0; i < sections.Length; i++)
        {
            if (sections[i].Type is SHT_SYMTAB or SHT_DYNSYM)
            {
                ReadSymbolSection(source, sections, i, list);
            }
        }

        ElfDynamicEntry[] dynamic = [];
        if (TryFindSegment(segments, PT_DYNAMIC, out var dynamicSegment) && dynamicSegment.FileSize != 0)
        {
            source.CheckRange(dynamicSegment.Offset, dynamicSegment.FileSize, "PT_DYNAMIC");
            dynamic = ReadDynamicEntries(source, dynamicSegment.Offset, dynamicSegment.FileSize);
        }

        string? interpreter = null;
        if (TryFindSegment(segments, PT_INTERP, out var interp))
        {
            source.CheckRange(interp.Offset, interp.FileSize, "PT_INTERP");
            interpreter = ReadTerminatedString(source, interp.Offset, Math.Min(interp.FileSize, MaxInterpreterLength), "PT_INTERP");
        }

        return new ElfFile(
            source.Name,
            header,
            segments,
            sections,
            dynamic,
            interpreter,
            ReadSoName(source, segments, dynamic),
            new ElfSymbolTable(list),
            ReadRelocations(source, sections),
            PrepareExtents(source, segments, sections, dynamic));
    }

    private static ElfHeader ReadHeader(ElfSource source)
    {
        if (source.Length < Elf64HeaderSize)
        {
            throw source.Error($"{source.Length} bytes is too short for an ELF header");
        }

        Span<byte> bytes = stackalloc byte[Elf64HeaderSize];
        source.Read(0, bytes, "ELF header");
        if (!HasElfMagic(bytes))
        {
            throw source.Error("not an ELF file (bad magic)");
        }

        if (bytes[4] != ELFCLASS64)
        {
            throw source.Error($"ELF class {bytes[4]} is not ELF64");
        }

        if (bytes[5] != ELFDATA2LSB)
        {
            throw source.Error($"ELF data encoding {bytes[5]} is not little-endian");
        }

        var type = (ElfType)BinaryPrimitives.ReadUInt16LittleEndian(bytes[16..]);
        var machine = BinaryPrimitives.ReadUInt16LittleEndian(bytes[18..]);
        var entry = BinaryPrimitives.ReadUInt64LittleEndian(bytes[24..]);
        var phoff = BinaryPrimitives.ReadUInt64LittleEndian(bytes[32..]);
        var shoff = BinaryPrimitives.ReadUInt64LittleEndian(bytes[40..]);
        var phentsize = BinaryPrimitives.ReadUInt16LittleEndian(bytes[54..]);
        int phnum = BinaryPrimitives.ReadUInt16LittleEndian(bytes[56..]);
        var shentsize = BinaryPrimitives.ReadUInt16LittleEndian(bytes[58..]);
        int shnum = BinaryPrimitives.ReadUInt16LittleEndian(bytes[60..]);
        int shstrndx = BinaryPrimitives.ReadUInt16LittleEndian(bytes[62..]);

        if (phnum != 0 && phentsize < Elf64ProgramHeaderSize)
        {
            throw source.Error($"program header entry size {phentsize} is smaller than {Elf64ProgramHeaderSize}");
        }

        if (shoff != 0 && shentsize < Elf64SectionHeaderSize && (shnum != 0 || shstrndx == SHN_XINDEX))
        {
            throw source.Error($"section header entry size {shentsize} is smaller than {Elf64SectionHeaderSize}");
        }

        // Counts too large for the header's 16 bits live in section 0 (PN_XNUM, SHN_XINDEX); read it once.
        if (shoff != 0 && (phnum == 0xffff || shnum == 0 || shstrndx == SHN_XINDEX))
        {
            var sizeField = source.ReadUInt64(Offset(source, shoff, 32, "section header 0"), "section header 0 size");
            var linkField = source.ReadUInt32(Offset(source, shoff, 40, "section header 0"), "section header 0 link");
            var infoField = source.ReadUInt32(Offset(source, shoff, 44, "section header 0"), "section header 0 info");
            if (shnum == 0)
            {
                shnum = sizeField > MaxSections ? throw source.Error($"extended section count {sizeField} exceeds {MaxSections}") : (int)sizeField;
            }

            if (shstrndx == SHN_XINDEX)
            {
                shstrndx = linkField > MaxSections ? throw source.Error($"extended section name index {linkField} is out of range") : (int)linkField;
            }

            if (phnum == 0xffff)
            {
                phnum = infoField > MaxProgramHeaders ? throw source.Error($"extended program header count {infoField} exceeds {MaxProgramHeaders}") : (int)infoField;
            }
        }

        if (phnum > MaxProgramHeaders)
        {
            throw source.Error($"{phnum} program headers is more than the {MaxProgramHeaders} we accept");
        }

        if (shoff == 0)
        {
            shnum = 0;
            shstrndx = 0;
        }

        return new ElfHeader(type, machine, entry, phoff, shoff, phnum, shnum, shstrndx, phentsize, shentsize);
    }

    private static ElfProgramHeader[] ReadProgramHeaders(ElfSource source, ElfHeader header)
    {
        if (header.ProgramHeaderCount == 0)
        {
            return [];
        }

        var entrySize = (ulong)header.ProgramHeaderEntrySize;
        var table = source.ReadArray(header.ProgramHeaderOffset, (ulong)header.ProgramHeaderCount * entrySize, "program header table", MaxTableBytes);
        var segments = new ElfProgramHeader[header.ProgramHeaderCount];
        for (var i = 0; i < segments.Length; i++)
        {
            var entry = table.AsSpan(checked(i * (int)entrySize), Elf64ProgramHeaderSize);
            segments[i] = new ElfProgramHeader(
                Type: BinaryPrimitives.ReadUInt32LittleEndian(entry),
                Flags: BinaryPrimitives.ReadUInt32LittleEndian(entry[4..]),
                Offset: BinaryPrimitives.ReadUInt64LittleEndian(entry[8..]),
                VirtualAddress: BinaryPrimitives.ReadUInt64LittleEndian(entry[16..]),
                FileSize: BinaryPrimitives.ReadUInt64LittleEndian(entry[32..]),
                MemorySize: BinaryPrimitives.ReadUInt64LittleEndian(entry[40..]),
                Alignment: BinaryPrimitives.ReadUInt64LittleEndian(entry[48..]));
        }

        return segments;
    }

    private static ElfSection[] ReadSections(ElfSource source, ElfHeader header)
    {
        if (header.SectionHeaderCount == 0)
        {
            return [];
        }

        var entrySize = (ulong)header.SectionHeaderEntrySize;
        var table = source.ReadArray(header.SectionHeaderOffset, (ulong)header.SectionHeaderCount * entrySize, "section header table", MaxTableBytes);
        var raw = new (uint Name, ElfSection Section)[header.SectionHeaderCount];
        for (var i = 0; i < raw.Length; i++)
        {
            var entry = table.AsSpan(checked(i * (int)entrySize), Elf64SectionHeaderSize);
            raw[i] = (BinaryPrimitives.ReadUInt32LittleEndian(entry), new ElfSection(
                Name: string.Empty,
                Type: BinaryPrimitives.ReadUInt32LittleEndian(entry[4..]),
                Flags: BinaryPrimitives.ReadUInt64LittleEndian(entry[8..]),
                Address: BinaryPrimitives.ReadUInt64LittleEndian(entry[16..]),
                Offset: BinaryPrimitives.ReadUInt64LittleEndian(entry[24..]),
                Size: BinaryPrimitives.ReadUInt64LittleEndian(entry[32..]),
                Link: BinaryPrimitives.ReadUInt32LittleEndian(entry[40..]),
                Info: BinaryPrimitives.ReadUInt32LittleEndian(entry[44..]),
                EntrySize: BinaryPrimitives.ReadUInt64LittleEndian(entry[56..])));
        }

        byte[] names = [];
        if (header.SectionNameTableIndex != SHN_UNDEF)
        {
            if (header.SectionNameTableIndex >= raw.Length)
            {
                throw source.Error($"section name table index {header.SectionNameTableIndex} is not below the section count {raw.Length}");
            }

            var table2 = raw[header.SectionNameTableIndex].Section;
            if (table2.Type != SHT_NOBITS)
            {
                names = source.ReadArray(table2.Offset, table2.Size, "section name table", MaxStringTableSize);
            }
        }

        var sections = new ElfSection[raw.Length];
        for (var i = 0; i < raw.Length; i++)
        {
            var name = raw[i].Name < (ulong)names.Length ? DecodeString(source, names, raw[i].Name, $"name of section {i}") : string.Empty;
            sections[i] = raw[i].Section with { Name = name };
        }

        return sections;
    }

    private static void ReadSymbolSection(ElfSource source, ElfSection[] sections, int index, List<ElfSymbol> symbols)
    {
        var section = sections[index];
        var kind = section.Type == SHT_SYMTAB ? "symbol" : "dynamic symbol";
        if (section.Size == 0)
        {
            return;
        }

        var entrySize = section.EntrySize == 0 ? Elf64SymbolSize : section.EntrySize;
        if (entrySize < Elf64SymbolSize || entrySize > 1024)
        {
            throw source.Error($"section {index} ({section.Name}) has symbol entry size {section.EntrySize}");
        }

        var count = section.Size / entrySize;
        if (count > MaxSymbols)
        {
            throw source.Error($"section {index} ({section.Name}) claims {count} symbols, more than the {MaxSymbols} we accept");
        }

        if (section.Link == 0 || section.Link >= sections.Length)
        {
            throw source.Error($"section {index} ({section.Name}) links to string table {section.Link}, which does not exist");
        }

        var stringSection = sections[section.Link];
        if (stringSection.Type == SHT_NOBITS)
        {
            throw source.Error($"string table {section.Link} of section {index} ({section.Name}) has no bytes in the file");
        }

        var strings = source.ReadArray(stringSection.Offset, stringSection.Size, $"string table {section.Link} ({stringSection.Name})", MaxStringTableSize);
        var table = source.ReadArray(section.Offset, count * entrySize, $"section {index} ({section.Name})", MaxTableBytes);
        DecodeSymbols(source, table, (int)entrySize, strings, kind, symbols, ReadHiddenVersions(source, sections, index, count));
    }

    /// <summary>
    /// Which entries of the dynamic symbol table <paramref name="index"/> are hidden (compat) versions, from its
    /// .gnu.version section: libc's <c>memcpy@GLIBC_2.2.5</c> beside the default <c>memcpy@@GLIBC_2.14</c>, both named
    /// "memcpy" in .dynsym. Null when the object has no version table for it.
    /// </summary>
    private static bool[]? ReadHiddenVersions(ElfSource source, ElfSection[] sections, int index, ulong count)
    {
        foreach (var versions in sections)
        {
            if (versions.Type != SHT_GNU_VERSYM || versions.Link != (uint)index || versions.Size < count * 2)
            {
                continue;
            }

            var bytes = source.ReadArray(versions.Offset, count * 2, $"version table of section {index}", MaxTableBytes);
            var hidden = new bool[count];
            for (var i = 0; i < hidden.Length; i++)
            {
                hidden[i] = (BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(i * 2)) & VersionHidden) != 0;
            }

            return hidden;
        }

        return null;
    }

    private static void DecodeSymbols(ElfSource source, byte[] table, int entrySize, byte[] strings, string kind, List<ElfSymbol> symbols, bool[]? hidden = null)
    {
        // Symbol 0 is the reserved null symbol.
        for (var offset = entrySize; offset + Elf64SymbolSize <= table.Length; offset += entrySize)
        {
            var entry = table.AsSpan(offset, Elf64SymbolSize);
            var nameOffset = BinaryPrimitives.ReadUInt32LittleEndian(entry);
            var info = entry[4];
            var sectionIndex = BinaryPrimitives.ReadUInt16LittleEndian(entry[6..]);
            if (sectionIndex == SHN_UNDEF || nameOffset == 0)
            {
                // Imports and unnamed symbols name nothing in this object; skip them before decoding a name.
                continue;
            }

            if (nameOffset >= (uint)strings.Length)
            {
                throw source.Error($"{kind} {offset / entrySize} has name offset 0x{nameOffset:x} beyond its string table (0x{strings.Length:x} bytes)");
            }

            symbols.Add(new ElfSymbol(
                Name: DecodeString(source, strings, nameOffset, $"name of {kind} {offset / entrySize}"),
                Value: BinaryPrimitives.ReadUInt64LittleEndian(entry[8..]),
                Size: BinaryPrimitives.ReadUInt64LittleEndian(entry[16..]),
                Type: (ElfSymbolType)(info & 0xf),
                Binding: (ElfSymbolBinding)(info >> 4),
                SectionIndex: sectionIndex) { IsHiddenVersion = hidden is not null && offset / entrySize < hidden.Length && hidden[offset / entrySize] });
        }
    }

    /// <summary>The relocations that fill GOT slots with function addresses, from every SHT_RELA section.</summary>
    private static ElfRelocation[] ReadRelocations(ElfSource source, ElfSection[] sections)
    {
        var relocations = new List<ElfRelocation>();
        for (var i = 0; i < sections.Length; i++)
        {
            var section = sections[i];
            if (section.Type != SHT_RELA || section.Size == 0)
            {
                continue;
            }

            var entrySize = section.EntrySize == 0 ? Elf64RelaSize : section.EntrySize;
            if (entrySize < Elf64RelaSize || entrySize > 1024)
            {
                throw source.Error($"section {i} ({section.Name}) has relocation entry size {section.EntrySize}");
            }

            var table = source.ReadArray(section.Offset, section.Size / entrySize * entrySize, $"section {i} ({section.Name})", MaxTableBytes);
            SymbolNames? names = null;
            for (var offset = 0; offset + Elf64RelaSize <= table.Length; offset += (int)entrySize)
            {
                var entry = table.AsSpan(offset, Elf64RelaSize);
                var info = BinaryPrimitives.ReadUInt64LittleEndian(entry[8..]);
                var type = (uint)info;
                if (type is not (R_X86_64_GLOB_DAT or R_X86_64_JUMP_SLOT or R_X86_64_IRELATIVE))
                {
                    continue;
                }

                string? name = null;
                var symbol = (uint)(info >> 32);
                if (symbol != 0)
                {
                    names ??= SymbolNames.Open(source, sections, section.Link);
                    name = names?.NameOf(symbol);
                }

                relocations.Add(new ElfRelocation(
                    BinaryPrimitives.ReadUInt64LittleEndian(entry),
                    type,
                    name,
                    BinaryPrimitives.ReadInt64LittleEndian(entry[16..])));
            }
        }

        return [.. relocations];
    }

    /// <summary>The names of a symbol table's entries by index, imports included, read on demand.</summary>
    private sealed class SymbolNames
    {
        private readonly ElfSource _source;
        private readonly ElfSection _symbols;
        private readonly byte[] _strings;

        private SymbolNames(ElfSource source, ElfSection symbols, byte[] strings)
        {
            _source = source;
            _symbols = symbols;
            _strings = strings;
        }

        public static SymbolNames? Open(ElfSource source, ElfSection[] sections, uint link)
        {
            if (link == 0 || link >= sections.Length || sections[link].Type is not (SHT_DYNSYM or SHT_SYMTAB))
            {
                return null;
            }

            var symbols = sections[link];
            if (symbols.Link == 0 || symbols.Link >= sections.Length || sections[symbols.Link].Type == SHT_NOBITS)
            {
                return null;
            }

            var strings = sections[symbols.Link];
            return new SymbolNames(source, symbols, source.ReadArray(strings.Offset, strings.Size, $"string table {symbols.Link} ({strings.Name})", MaxStringTableSize));
        }

        public string? NameOf(uint index)
        {
            var entrySize = _symbols.EntrySize == 0 ? Elf64SymbolSize : _symbols.EntrySize;
            if ((ulong)index >= _symbols.Size / Math.Max(entrySize, 1))
            {
                return null;
            }

            var nameOffset = _source.ReadUInt32(Offset(_source, _symbols.Offset, index * entrySize, "relocation symbol"), "relocation symbol name");
            return nameOffset < (uint)_strings.Length ? DecodeString(_source, _strings, nameOffset, $"name of symbol {index}") : null;
        }
    }

    private static ElfDynamicEntry[] ReadDynamicEntries(ElfSource source, ulong offset, ulong size)
    {
        var capacity = (int)Math.Min(size / Elf64DynamicSize, MaxDynamicEntries);
        var entries = new List<ElfDynamicEntry>(Math.Min(capacity, 64));
        Span<byte> entry = stackalloc byte[Elf64DynamicSize];
        for (var i = 0; i < capacity; i++)
        {
            source.Read(Offset(source, offset, (ulong)i * Elf64DynamicSize, "dynamic section"), entry, $"dynamic entry {i}");
            var tag = BinaryPrimitives.ReadInt64LittleEndian(entry);
            if (tag == DT_NULL)
            {
                return [.. entries];
            }

            entries.Add(new ElfDynamicEntry(tag, BinaryPrimitives.ReadUInt64LittleEndian(entry[8..])));
        }

        // A section filled to its size without DT_NULL is tolerated (the linker pads with DT_NULL, fuzzers do not).
        return [.. entries];
    }

    private static ulong CountDynamicSymbols(ElfSource space, ElfDynamicEntry[] dynamic, Func<ulong, ulong> relocate, ulong symtab, ulong strtab, ulong entrySize)
    {
        ulong count;
        if (TryGetDynamic(dynamic, DT_HASH, out var hash))
        {
            // SysV hash: nbucket, nchain; nchain is the number of symbols.
            count = space.ReadUInt32(Offset(space, relocate(hash), 4, "DT_HASH"), "DT_HASH nchain");
        }
        else if (TryGetDynamic(dynamic, DT_GNU_HASH, out var gnuHash))
        {
            count = CountGnuHashSymbols(space, relocate(gnuHash));
        }
        else if (strtab > symtab)
        {
            // No hash table: the linker puts .dynstr right after .dynsym.
            count = (strtab - symtab) / entrySize;
        }
        else
        {
            throw space.Error("the dynamic section has neither DT_HASH nor DT_GNU_HASH: the symbol count is unknown");
        }

        return count > MaxSymbols ? throw space.Error($"{count} dynamic symbols is more than the {MaxSymbols} we accept") : count;
    }

    /// <summary>
    /// GNU hash tables do not store the symbol count: it is one past the last symbol of the longest-indexed
    /// chain, whose end is marked by bit 0 of the chain word. The walk is bounded by <see cref="MaxSymbols"/>.
    /// </summary>
    private static ulong CountGnuHashSymbols(ElfSource space, ulong table)
    {
        var bucketCount = space.ReadUInt32(table, "DT_GNU_HASH nbuckets");
        var symbolOffset = space.ReadUInt32(Offset(space, table, 4, "DT_GNU_HASH"), "DT_GNU_HASH symoffset");
        var bloomWords = space.ReadUInt32(Offset(space, table, 8, "DT_GNU_HASH"), "DT_GNU_HASH bloom size");
        if (bucketCount > MaxSymbols || bloomWords > MaxSymbols)
        {
            throw space.Error($"DT_GNU_HASH claims {bucketCount} buckets and {bloomWords} bloom words");
        }

        var buckets = Offset(space, table, 16 + ((ulong)bloomWords * 8), "DT_GNU_HASH buckets");
        var bucketBytes = space.ReadArray(buckets, (ulong)bucketCount * 4, "DT_GNU_HASH buckets", MaxTableBytes);
        uint last = 0;
        for (var i = 0; i < bucketBytes.Length; i += 4)
        {
            last = Math.Max(last, BinaryPrimitives.ReadUInt32LittleEndian(bucketBytes.AsSpan(i)));
        }

        if (last < symbolOffset)
        {
            return symbolOffset;
        }

        // Chains are read a block at a time: in victim memory each read is a system call.
        var chains = Offset(space, buckets, (ulong)bucketCount * 4, "DT_GNU_HASH chains");
        Span<byte> block = stackalloc byte[256 * 4];
        for (ulong index = last; index < MaxSymbols;)
        {
            var at = Offset(space, chains, (index - symbolOffset) * 4, "DT_GNU_HASH chains");
            var words = (int)Math.Min(256, Math.Min(space.Length - Math.Min(at, space.Length), (ulong)block.Length) / 4);
            if (words == 0)
            {
                break;
            }

            var slice = block[..(words * 4)];
            try
            {
                space.Read(at, slice, "DT_GNU_HASH chain");
            }
            catch (ElfFormatException) when (words > 1)
            {
                // The block crossed into an unmapped page: fall back to one word.
                slice = block[..4];
                space.Read(at, slice, "DT_GNU_HASH chain");
            }

            for (var i = 0; i < slice.Length; i += 4, index++)
            {
                if ((BinaryPrimitives.ReadUInt32LittleEndian(slice[i..]) & 1) != 0)
                {
                    return index + 1;
                }
            }
        }

        throw space.Error("DT_GNU_HASH chain does not end");
    }

    private static string? ReadSoName(ElfSource source, ElfProgramHeader[] segments, ElfDynamicEntry[] dynamic)
    {
        if (!TryGetDynamic(dynamic, DT_SONAME, out var nameOffset)
            || !TryGetDynamic(dynamic, DT_STRTAB, out var strtab)
            || !TryGetDynamic(dynamic, DT_STRSZ, out var size)
            || nameOffset >= size)
        {
            return null;
        }

        // DT_STRTAB is a virtual address; find the file bytes through the segment that loads it.
        foreach (var segment in segments)
        {
            if (segment.IsLoad && strtab >= segment.VirtualAddress && strtab - segment.VirtualAddress < segment.FileSize)
            {
                var fileOffset = segment.Offset + (strtab - segment.VirtualAddress);
                return ReadTerminatedString(source, Offset(source, fileOffset, nameOffset, "DT_SONAME"), Math.Min(size - nameOffset, MaxInterpreterLength), "DT_SONAME");
            }
        }

        return null;
    }

    private static string ReadTerminatedString(ElfSource source, ulong offset, ulong maxLength, string what)
    {
        var available = Math.Min(maxLength, source.Length > offset ? source.Length - offset : 0);
        if (available == 0)
        {
            throw source.Error($"{what} at 0x{offset:x} is empty or outside the image");
        }

        var bytes = source.ReadArray(offset, available, what, MaxInterpreterLength);
        var end = bytes.AsSpan().IndexOf((byte)0);
        return Encoding.UTF8.GetString(bytes, 0, end < 0 ? bytes.Length : end);
    }

    private static string DecodeString(ElfSource source, byte[] strings, ulong offset, string what)
    {
        var tail = strings.AsSpan((int)offset);
        var end = tail.IndexOf((byte)0);
        if (end < 0)
        {
            throw source.Error($"{what} at string offset 0x{offset:x} is not terminated");
        }

        return Encoding.UTF8.GetString(tail[..end]);
    }

    /// <summary>base + delta, refusing to wrap around the address space.</summary>
    private static ulong Offset(ElfSource source, ulong start, ulong delta, string what) =>
        delta > ulong.MaxValue - start ? throw source.Error($"{what}: 0x{start:x} + 0x{delta:x} overflows") : start + delta;

    private static bool TryFindSegment(ElfProgramHeader[] segments, uint type, out ElfProgramHeader segment)
    {
        foreach (var candidate in segments)
        {
            if (candidate.Type == type)
            {
                segment = candidate;
                return true;
            }
        }

        segment = default;
        return false;
    }

    private static bool TryFindLoadSegment(ElfProgramHeader[] segments, ulong fileOffset, out ElfProgramHeader segment)
    {
        var page = (ulong)Environment.SystemPageSize;
        foreach (var candidate in segments)
        {
            var pageStart = candidate.Offset & ~(page - 1);
            var lead = candidate.Offset - pageStart;
            var extent = candidate.FileSize > ulong.MaxValue - lead ? ulong.MaxValue : candidate.FileSize + lead;
            if (candidate.IsLoad && fileOffset >= pageStart && fileOffset - pageStart < Math.Max(extent, 1))
            {
                segment = candidate;
                return true;
            }
        }

        segment = default;
        return false;
    }

    private static (ulong Low, ulong High) LoadedExtent(ElfProgramHeader[] segments, ulong bias)
    {
        ulong low = ulong.MaxValue, high = 0;
        foreach (var segment in segments)
        {
            if (segment.IsLoad)
            {
                var start = unchecked(bias + segment.VirtualAddress);
                var end = unchecked(start + segment.MemorySize);
                low = Math.Min(low, start);
                high = Math.Max(high, end < start ? ulong.MaxValue : end);
            }
        }

        return (low, high);
    }

    private static bool TryGetDynamic(ElfDynamicEntry[] dynamic, long tag, out ulong value)
    {
        foreach (var entry in dynamic)
        {
            if (entry.Tag == tag)
            {
                value = entry.Value;
                return true;
            }
        }

        value = 0;
        return false;
    }
}
