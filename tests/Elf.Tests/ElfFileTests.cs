namespace ProcHex.Elf.Tests;

[Trait("Backend", "Linux")]
public sealed class ElfFileTests
{
    private const string Libc = "/lib/x86_64-linux-gnu/libc.so.6";
    private const string Linker = "/lib64/ld-linux-x86-64.so.2";

    [Fact]
    public void Parses_bin_ls_as_a_position_independent_executable_with_an_interpreter()
    {
        var ls = ElfFile.Open("/bin/ls");

        Assert.Equal(ElfType.SharedObject, ls.Header.Type);
        Assert.Equal(62, ls.Header.Machine); // EM_X86_64
        Assert.Equal("/lib64/ld-linux-x86-64.so.2", ls.Interpreter);
        Assert.Contains(ls.ProgramHeaders, p => p.IsLoad);
        Assert.Contains(ls.Sections, s => s.Name == ".dynsym");
        Assert.Contains(ls.DynamicEntries, d => d.Tag == ElfDynamicTag.Needed);
        Assert.True(ls.Symbols.TryLookup("_obstack_begin", out var symbol));
        Assert.Equal(ElfSymbolType.Function, symbol.Type);
    }

    [Fact]
    public void Parses_libc_with_its_soname_and_versioned_dynamic_symbols()
    {
        var libc = ElfFile.Open(Libc);

        Assert.Equal("libc.so.6", libc.SoName);
        Assert.Equal("/lib64/ld-linux-x86-64.so.2", libc.Interpreter); // libc runs as a program too
        Assert.True(libc.Symbols.TryLookup("malloc", out var malloc));
        Assert.Equal(ElfSymbolType.Function, malloc.Type);
        Assert.NotEqual(0UL, malloc.Size);
        Assert.True(libc.Symbols.TryLookup("pthread_cond_wait", out _), "versioned symbols are found by their plain name");
        Assert.False(libc.Symbols.TryLookup("no_such_symbol_in_libc", out _));
        Assert.False(libc.Symbols.TryLookup("GLIBC_2.2.5", out _), "version definitions (absolute) are not addresses");
    }

    [Fact]
    [Trait("Issue", "17.1")]
    public void A_name_dynsym_has_in_two_versions_answers_with_the_default_one_libcs_memcpy_is_an_indirect_function()
    {
        var libc = ElfFile.Open(Libc);

        // memcpy@GLIBC_2.2.5 (a plain function, hidden) and memcpy@@GLIBC_2.14 (the IFUNC new programs bind to).
        Assert.True(libc.Symbols.TryLookup("memcpy", out var memcpy));
        Assert.False(memcpy.IsHiddenVersion);
        Assert.Equal(ElfSymbolType.IndirectFunction, memcpy.Type);
    }

    [Fact]
    [Trait("Issue", "17.1")]
    public void Reads_the_GOT_relocations_libc_uses_for_its_own_indirect_function_calls_and_its_PLT_sections()
    {
        var libc = ElfFile.Open(Libc);
        var resolvers = libc.Symbols.ByValue.ToArray().Where(s => s.Type == ElfSymbolType.IndirectFunction).Select(s => s.Value).ToHashSet();

        var irelative = libc.Relocations.Where(r => r.Type == ElfConstants.R_X86_64_IRELATIVE).ToList();
        Assert.NotEmpty(irelative);
        Assert.All(irelative, r => Assert.Null(r.SymbolName));
        Assert.Contains(irelative, r => resolvers.Contains((ulong)r.Addend));
        Assert.Contains(libc.Relocations, r => r.Type is ElfConstants.R_X86_64_GLOB_DAT or ElfConstants.R_X86_64_JUMP_SLOT && r.SymbolName is { Length: > 0 });
        var plt = libc.Sections.Single(s => s.Name == ".plt");
        Assert.Contains((plt.Address, plt.Size), libc.LazyBindingStubs);
    }

    [Fact]
    public void Parses_the_dynamic_linker_and_finds_its_debugging_interface()
    {
        var linker = ElfFile.Open(Linker);

        Assert.True(linker.Symbols.TryLookup("_r_debug", out var rDebug));
        Assert.Equal(ElfSymbolType.DataObject, rDebug.Type);
        Assert.Equal((ulong)RDebug.Size, rDebug.Size);
        Assert.True(linker.Symbols.TryLookup("_dl_debug_state", out var debugState));
        Assert.Equal(ElfSymbolType.Function, debugState.Type);
    }

    [Fact]
    public void Resolves_every_sized_function_of_libc_back_to_a_symbol_at_its_value()
    {
        var libc = ElfFile.Open(Libc);
        var checkedCount = 0;
        foreach (var symbol in libc.Symbols.ByValue)
        {
            if (symbol.Type != ElfSymbolType.Function || symbol.Size == 0)
            {
                continue;
            }

            Assert.True(libc.Symbols.TryResolve(symbol.Value, out var start, out var startOffset));
            Assert.Equal(symbol.Value, start.Value);
            Assert.Equal(0UL, startOffset);

            var last = symbol.Value + symbol.Size - 1;
            Assert.True(libc.Symbols.TryResolve(last, out var inside, out var insideOffset));
            Assert.True(inside.Contains(last), $"{inside.Name} does not contain 0x{last:x}");
            Assert.Equal(last - inside.Value, insideOffset);
            checkedCount++;
        }

        Assert.True(checkedCount > 1000, $"only {checkedCount} functions");
    }

    [Fact]
    public void Lookups_do_not_allocate()
    {
        var libc = ElfFile.Open(Libc);
        Assert.True(libc.Symbols.TryLookup("malloc", out var malloc));
        libc.Symbols.TryResolve(malloc.Value + 3, out _, out _);

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
        {
            libc.Symbols.TryLookup("malloc", out _);
            libc.Symbols.TryLookup("no_such_symbol", out _);
            libc.Symbols.TryResolve(malloc.Value + (ulong)i, out _, out _);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void A_file_that_is_not_ELF_is_a_clear_format_error()
    {
        var error = Assert.Throws<ElfFormatException>(() => ElfFile.Parse("#!/bin/sh\necho hello, this is a script\n"u8.ToArray().Concat(new byte[64]).ToArray(), "script"));
        Assert.Equal("script: not an ELF file (bad magic)", error.Message);
    }

    [Fact]
    public void A_truncated_file_names_the_part_that_is_missing()
    {
        var ls = File.ReadAllBytes("/bin/ls");

        var noSections = Assert.Throws<ElfFormatException>(() => ElfFile.Parse(ls.AsMemory(0, ls.Length - 100), "ls"));
        Assert.Contains("section header table", noSections.Message, StringComparison.Ordinal);
        Assert.Contains("lies outside the image", noSections.Message, StringComparison.Ordinal);

        var tiny = Assert.Throws<ElfFormatException>(() => ElfFile.Parse(ls.AsMemory(0, 40), "ls"));
        Assert.Equal("ls: 40 bytes is too short for an ELF header", tiny.Message);
    }

    [Fact]
    public void An_ELF32_or_big_endian_file_is_refused_by_name()
    {
        var ls = File.ReadAllBytes("/bin/ls");
        var elf32 = (byte[])ls.Clone();
        elf32[4] = 1;
        Assert.Equal("x: ELF class 1 is not ELF64", Assert.Throws<ElfFormatException>(() => ElfFile.Parse(elf32, "x")).Message);

        var bigEndian = (byte[])ls.Clone();
        bigEndian[5] = 2;
        Assert.Equal("x: ELF data encoding 2 is not little-endian", Assert.Throws<ElfFormatException>(() => ElfFile.Parse(bigEndian, "x")).Message);
    }

    [Fact]
    public void Huge_counts_are_refused_instead_of_allocated()
    {
        var ls = File.ReadAllBytes("/bin/ls");
        var bytes = (byte[])ls.Clone();

        // A .dynsym that claims 2^40 bytes.
        var libc = ElfFile.Parse(ls, "ls");
        var index = libc.Sections.ToList().FindIndex(s => s.Name == ".dynsym");
        var shoff = (int)libc.Header.SectionHeaderOffset;
        BitConverter.GetBytes(1UL << 40).CopyTo(bytes, shoff + (index * 64) + 32);

        var error = Assert.Throws<ElfFormatException>(() => ElfFile.Parse(bytes, "ls"));
        Assert.Contains("symbols, more than the", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_load_bias_of_a_mapping_follows_from_the_segment_it_maps()
    {
        var libc = ElfFile.Open(Libc);
        var text = libc.ProgramHeaders.First(p => p.IsLoad && (p.Flags & 1) != 0);
        const ulong bias = 0x7f00_1234_0000;
        var page = (ulong)Environment.SystemPageSize;
        var mappingOffset = text.Offset & ~(page - 1);
        var mappingStart = (bias + text.VirtualAddress) & ~(page - 1);

        Assert.True(libc.TryComputeLoadBias(mappingStart, mappingOffset, out var computed));
        Assert.Equal(bias, computed);
        Assert.True(libc.TryComputeLoadBias(bias, 0, out var fromFirstPage));
        Assert.Equal(bias, fromFirstPage);
    }
}

[Trait("Backend", "Linux")]
public sealed class ElfSymbolTableTests
{
    private static ElfSymbol Function(string name, ulong value, ulong size = 16, ElfSymbolBinding binding = ElfSymbolBinding.Global) =>
        new(name, value, size, ElfSymbolType.Function, binding, 12);

    [Fact]
    public void Versioned_names_answer_to_their_plain_name_with_the_default_version_first()
    {
        var table = new ElfSymbolTable([Function("memcpy@GLIBC_2.2.5", 0x100), Function("memcpy@@GLIBC_2.14", 0x200), Function("only_compat@V1", 0x300)]);

        Assert.True(table.TryLookup("memcpy", out var memcpy));
        Assert.Equal(0x200UL, memcpy.Value);
        Assert.True(table.TryLookup("memcpy@GLIBC_2.2.5", out var compat));
        Assert.Equal(0x100UL, compat.Value);
        Assert.True(table.TryLookup("only_compat", out var onlyCompat));
        Assert.Equal(0x300UL, onlyCompat.Value);
    }

    [Fact]
    public void Globals_win_over_locals_and_labels_inside_functions_resolve_to_the_function()
    {
        var table = new ElfSymbolTable(
        [
            Function("helper", 0x100, binding: ElfSymbolBinding.Local),
            Function("helper", 0x200),
            Function("big", 0x1000, 0x100),
            new ElfSymbol(".Lloop", 0x1010, 0, ElfSymbolType.NoType, ElfSymbolBinding.Local, 12),
            new ElfSymbol("_start_label", 0x2000, 0, ElfSymbolType.NoType, ElfSymbolBinding.Global, 12),
            new ElfSymbol("undefined", 0, 0, ElfSymbolType.Function, ElfSymbolBinding.Global, 0),
            new ElfSymbol("tls", 0x10, 8, ElfSymbolType.ThreadLocal, ElfSymbolBinding.Global, 20),
            new ElfSymbol("GLIBC_2.2.5", 0, 0, ElfSymbolType.DataObject, ElfSymbolBinding.Global, 0xfff1),
        ]);

        Assert.True(table.TryLookup("helper", out var helper));
        Assert.Equal(0x200UL, helper.Value);
        Assert.False(table.TryLookup("undefined", out _));
        Assert.False(table.TryLookup("tls", out _));
        Assert.False(table.TryLookup("GLIBC_2.2.5", out _));

        Assert.True(table.TryResolve(0x1010, out var label, out var labelOffset));
        Assert.Equal(("big", 0x10UL), (label.Name, labelOffset));
        Assert.True(table.TryResolve(0x1050, out var enclosing, out var offset));
        Assert.Equal("big", enclosing.Name);
        Assert.Equal(0x50UL, offset);
        Assert.False(table.TryResolve(0x1100, out _, out _)); // past the end of big, nothing unsized before it
        Assert.True(table.TryResolve(0x2008, out var unsized, out var unsizedOffset));
        Assert.Equal(("_start_label", 8UL), (unsized.Name, unsizedOffset));
        Assert.False(table.TryResolve(0x50, out _, out _));   // before everything
    }
}
