namespace ProcHex.Elf;

/// <summary>e_type: what kind of object a file is.</summary>
public enum ElfType : ushort
{
    /// <summary>ET_NONE: no file type.</summary>
    None = 0,
    /// <summary>ET_REL: a relocatable object (.o), never loaded as is.</summary>
    Relocatable = 1,

    /// <summary>ET_EXEC: linked at fixed addresses (a non-PIE executable); the load bias is 0.</summary>
    Executable = 2,

    /// <summary>ET_DYN: a shared library or a position-independent executable; loaded at a bias.</summary>
    SharedObject = 3,
    /// <summary>ET_CORE: a core dump.</summary>
    Core = 4,
}

/// <summary>The fields of the ELF64 file header we use.</summary>
public readonly record struct ElfHeader(
    ElfType Type,
    ushort Machine,
    ulong Entry,
    ulong ProgramHeaderOffset,
    ulong SectionHeaderOffset,
    int ProgramHeaderCount,
    int SectionHeaderCount,
    int SectionNameTableIndex,
    int ProgramHeaderEntrySize,
    int SectionHeaderEntrySize);

/// <summary>One program header (segment).</summary>
public readonly record struct ElfProgramHeader(
    uint Type,
    uint Flags,
    ulong Offset,
    ulong VirtualAddress,
    ulong FileSize,
    ulong MemorySize,
    ulong Alignment)
{
    /// <summary>True for a PT_LOAD segment, one the loader maps.</summary>
    public bool IsLoad => Type == ElfConstants.PT_LOAD;
}

/// <summary>One section header, with its name resolved.</summary>
public readonly record struct ElfSection(
    string Name,
    uint Type,
    ulong Flags,
    ulong Address,
    ulong Offset,
    ulong Size,
    uint Link,
    uint Info,
    ulong EntrySize);

/// <summary>
/// A relocation that stores a function's address into a GOT slot (GLOB_DAT, JUMP_SLOT, IRELATIVE): what finding the
/// implementation a GNU indirect function's resolver chose needs. <see cref="Offset"/> is as linked (add the load bias).
/// </summary>
/// <param name="Offset">r_offset: the slot, as linked.</param>
/// <param name="Type">R_X86_64_GLOB_DAT, R_X86_64_JUMP_SLOT or R_X86_64_IRELATIVE.</param>
/// <param name="SymbolName">The symbol the relocation names; null for IRELATIVE, which names the resolver by <see cref="Addend"/>.</param>
/// <param name="Addend">r_addend: for IRELATIVE, the resolver's linked address.</param>
public readonly record struct ElfRelocation(ulong Offset, uint Type, string? SymbolName, long Addend);

/// <summary>One entry of the dynamic section.</summary>
public readonly record struct ElfDynamicEntry(long Tag, ulong Value);

/// <summary>STT_*: what a symbol names.</summary>
public enum ElfSymbolType : byte
{
    /// <summary>STT_NOTYPE: unspecified.</summary>
    NoType = 0,
    /// <summary>STT_OBJECT: a variable or other data.</summary>
    DataObject = 1,
    /// <summary>STT_FUNC: a function, where breakpoints go.</summary>
    Function = 2,
    /// <summary>STT_SECTION: a section, for relocations.</summary>
    Section = 3,
    /// <summary>STT_FILE: the source file's name.</summary>
    File = 4,
    /// <summary>STT_COMMON: an uninitialised common block.</summary>
    Common = 5,
    /// <summary>STT_TLS: a thread-local variable.</summary>
    ThreadLocal = 6,

    /// <summary>STT_GNU_IFUNC: the value is the resolver's address, which is still code in the object.</summary>
    IndirectFunction = 10,
}

/// <summary>STB_*: who can see a symbol.</summary>
public enum ElfSymbolBinding : byte
{
    /// <summary>STB_LOCAL: this object only.</summary>
    Local = 0,
    /// <summary>STB_GLOBAL: every object; one definition wins.</summary>
    Global = 1,
    /// <summary>STB_WEAK: global, but a global definition elsewhere overrides it.</summary>
    Weak = 2,
    /// <summary>STB_GNU_UNIQUE: global and unique in the whole process, even across dlopen namespaces.</summary>
    Unique = 10,
}

/// <summary>A defined symbol. <see cref="Value"/> is as linked: add the object's load bias to get an address.</summary>
public readonly record struct ElfSymbol(
    string Name,
    ulong Value,
    ulong Size,
    ElfSymbolType Type,
    ElfSymbolBinding Binding,
    ushort SectionIndex)
{
    /// <summary>
    /// A .dynsym entry of a hidden (non-default, compat) version: a lookup by name prefers the default version, which
    /// is what the dynamic linker binds new programs to.
    /// </summary>
    public bool IsHiddenVersion { get; init; }

    /// <summary>True when an address in [Value, Value + Size) belongs to this symbol (size 0: only Value itself).</summary>
    public bool Contains(ulong value) => value >= Value && (value - Value < Size || value == Value);
}

/// <summary>p_type values a backend needs (PT_*).</summary>
public static class ElfSegmentType
{
    /// <summary>PT_LOAD: a segment the loader maps.</summary>
    public const uint Load = 1;
    /// <summary>PT_DYNAMIC: the dynamic section.</summary>
    public const uint Dynamic = 2;
    /// <summary>PT_INTERP: the path of the program interpreter (the dynamic linker).</summary>
    public const uint Interpreter = 3;
    /// <summary>PT_PHDR: the program header table itself.</summary>
    public const uint ProgramHeaders = 6;
}

/// <summary>d_tag values a backend needs (DT_*).</summary>
public static class ElfDynamicTag
{
    /// <summary>DT_NULL: the end of the dynamic section.</summary>
    public const long Null = 0;
    /// <summary>DT_NEEDED: a library this object needs.</summary>
    public const long Needed = 1;
    /// <summary>DT_SONAME: this library's own name.</summary>
    public const long SoName = 14;

    /// <summary>DT_DEBUG: 0 in the file; the dynamic linker stores the address of its r_debug here at run time.</summary>
    public const long Debug = 21;
}
