namespace ProcHex.Elf;

/// <summary>The numbers of the ELF specification we use, under their C names so they can be grepped against elf.h.</summary>
internal static class ElfConstants
{
    public const int EI_NIDENT = 16;
    public const byte ELFCLASS64 = 2;
    public const byte ELFDATA2LSB = 1;

    public const int Elf64HeaderSize = 64;
    public const int Elf64ProgramHeaderSize = 56;
    public const int Elf64SectionHeaderSize = 64;
    public const int Elf64SymbolSize = 24;
    public const int Elf64DynamicSize = 16;

    public const ushort SHN_UNDEF = 0;
    public const ushort SHN_LORESERVE = 0xff00;
    public const ushort SHN_ABS = 0xfff1;
    public const ushort SHN_XINDEX = 0xffff;

    public const uint PT_LOAD = 1;
    public const uint PT_DYNAMIC = 2;
    public const uint PT_INTERP = 3;
    public const uint PT_PHDR = 6;
    public const uint PT_GNU_EH_FRAME = 0x6474e550;

    public const uint SHT_SYMTAB = 2;
    public const uint SHT_STRTAB = 3;
    public const uint SHT_RELA = 4;
    public const uint SHT_NOBITS = 8;
    public const uint SHT_DYNSYM = 11;
    public const uint SHT_GNU_VERSYM = 0x6fffffff;

    /// <summary>The bit of a .gnu.version entry that marks a non-default (compat) version.</summary>
    public const ushort VersionHidden = 0x8000;

    /// <summary>x86-64 relocation types that fill a GOT slot with a function's final address.</summary>
    public const uint R_X86_64_GLOB_DAT = 6;
    public const uint R_X86_64_JUMP_SLOT = 7;
    public const uint R_X86_64_IRELATIVE = 37;

    public const int Elf64RelaSize = 24;

    public const long DT_NULL = 0;
    public const long DT_NEEDED = 1;
    public const long DT_HASH = 4;
    public const long DT_PLTGOT = 3;
    public const long DT_STRTAB = 5;
    public const long DT_SYMTAB = 6;
    public const long DT_STRSZ = 10;
    public const long DT_SYMENT = 11;
    public const long DT_SONAME = 14;
    public const long DT_DEBUG = 21;
    public const long DT_GNU_HASH = 0x6ffffef5;

    public const byte STT_NOTYPE = 0;
    public const byte STT_OBJECT = 1;
    public const byte STT_FUNC = 2;
    public const byte STT_SECTION = 3;
    public const byte STT_FILE = 4;
    public const byte STT_TLS = 6;
    public const byte STT_GNU_IFUNC = 10;

    public const byte STB_LOCAL = 0;
    public const byte STB_GLOBAL = 1;
    public const byte STB_WEAK = 2;

    /// <summary>
    /// Caps that turn a hostile header into an error instead of an allocation of gigabytes or a loop of
    /// billions. Real objects are far below them (libxul has ~400k symbols, ~50 program headers, ~45 sections).
    /// </summary>
    public const int MaxProgramHeaders = 4096;
    public const int MaxSections = 65536;
    public const int MaxSymbols = 16 * 1024 * 1024;
    public const int MaxDynamicEntries = 65536;
    public const int MaxStringTableSize = 256 * 1024 * 1024;
    public const int MaxInterpreterLength = 4096;

    /// <summary>The most bytes one table (headers, symbols, hash buckets) may take: a 16M-symbol .dynsym is 384 MiB.</summary>
    public const int MaxTableBytes = 512 * 1024 * 1024;
}
