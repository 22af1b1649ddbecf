using System.Diagnostics;
using System.Globalization;
using Xunit.Abstractions;

namespace ProcHex.Elf.Tests;

/// <summary>
/// Issue 18: <see cref="ObjectSymbolTable.FunctionSize"/> on stripped code, from real .eh_frame tables: a program gcc
/// compiles here and strips, and the system's libc (stripped of .symtab on Debian).
/// </summary>
[Trait("Backend", "Linux")]
public sealed class UnwindExtentTests(ITestOutputHelper output) : IDisposable
{
    private const string Libc = "/lib/x86_64-linux-gnu/libc.so.6";
    private const ulong Bias = 0x5555_0000_0000;

    private const string Program = """
        #include <stdio.h>
        #include <string.h>
        __attribute__((noinline)) static int scale(int x) { return x * 3 + (x > 10 ? 7 : 1); }
        __attribute__((noinline)) static size_t measure(const char *s) { size_t n = 0; while (s[n]) n++; return n + (size_t)scale((int)n); }
        int main(int argc, char **argv) { printf("%zu\n", measure(argv[0]) + (size_t)argc); return 0; }
        """;

    private readonly string _directory = Directory.CreateTempSubdirectory("prochex-fde-").FullName;

    [Theory]
    [Trait("Issue", "18")]
    [InlineData("-O2", "-pie")]
    [InlineData("-O0", "-no-pie")]
    public void A_stripped_programs_static_functions_get_their_symbol_size_from_the_unwind_table(string optimization, string pie)
    {
        var unstripped = CompileProgram(optimization, pie, pie == "-pie" ? "-fPIE" : "-fno-pie");
        var stripped = Strip(unstripped);
        var symbols = ElfFile.Open(unstripped);
        var image = ElfFile.Open(stripped);
        var bias = image.IsPositionIndependent ? Bias : 0;
        var table = Table(stripped, image, bias);

        foreach (var name in (string[])["scale", "measure", "main"])
        {
            Assert.True(symbols.Symbols.TryLookup(name, out var symbol), $"{name} is in the unstripped copy's .symtab");
            Assert.False(image.Symbols.TryLookup(name, out _), $"{name} is gone from the stripped copy");
            Assert.True(image.FunctionExtents.TryGetLength(symbol.Value, out var length), $"no unwind entry starts {name}");
            Assert.Equal(symbol.Size, length);
            // The branch check may reach on to the next entry (padding, an uncovered tail), never stop short of the function.
            Assert.InRange(table.FunctionSize(bias + symbol.Value) ?? 0, (int)symbol.Size, (int)symbol.Size + 64);
            Assert.Null(table.FunctionSize(bias + symbol.Value + 1));
        }
    }

    /// <summary>Without section headers the table is found through PT_GNU_EH_FRAME (.eh_frame_hdr's eh_frame_ptr).</summary>
    [Fact]
    [Trait("Issue", "18")]
    public void An_object_without_section_headers_finds_its_table_through_PT_GNU_EH_FRAME()
    {
        var unstripped = CompileProgram("-O2", "-pie", "-fPIE");
        var bytes = File.ReadAllBytes(Strip(unstripped));
        bytes.AsSpan(40, 8).Clear(); // e_shoff
        bytes.AsSpan(60, 4).Clear(); // e_shnum, e_shstrndx
        var image = ElfFile.Parse(bytes, "no sections");
        Assert.Empty(image.Sections);

        foreach (var name in (string[])["scale", "measure", "main"])
        {
            Assert.True(ElfFile.Open(unstripped).Symbols.TryLookup(name, out var symbol));
            Assert.True(image.FunctionExtents.TryGetLength(symbol.Value, out var length), $"no extent for {name}");
            Assert.Equal(symbol.Size, length);
        }
    }

    /// <summary>
    /// The case issue 18 met: strlen resolves to an implementation (__strlen_evex or __strlen_avx2 here) that has no
    /// symbol in a stripped libc. Where it is comes from the dynamic linker itself, in a program compiled here.
    /// </summary>
    [Fact]
    [Trait("Issue", "18")]
    public void The_libc_implementation_strlen_resolves_to_has_an_extent_though_no_symbol_starts_there()
    {
        var source = Path.Combine(_directory, "where.c");
        File.WriteAllText(source, """
            #define _GNU_SOURCE
            #include <dlfcn.h>
            #include <stdio.h>
            int main(void) { void *p = dlsym(RTLD_DEFAULT, "strlen"); Dl_info i; dladdr(p, &i); printf("%s %lx\n", i.dli_fname, (unsigned long)((char *)p - (char *)i.dli_fbase)); return 0; }
            """);
        var where = Run(Compile(source, "where", "-ldl"));
        var parts = where.Trim().Split(' ');
        Assert.True(Path.GetFileName(parts[0]) == "libc.so.6", $"strlen comes from {parts[0]}");
        var offset = ulong.Parse(parts[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture);

        var libc = ElfFile.Open(Libc);
        var table = Table(Libc, libc, Bias);
        var size = table.FunctionSize(Bias + offset);
        output.WriteLine($"strlen's implementation: libc+0x{offset:x}, {size?.ToString(CultureInfo.InvariantCulture) ?? "no"} bytes");

        Assert.False(libc.Symbols.TryResolve(offset, out var symbol, out var within) && within == 0 && symbol.Size > 0, $"a sized symbol {symbol.Name} starts there: the test proves nothing");
        Assert.NotNull(size);
        Assert.InRange(size!.Value, 16, 64 * 1024);
    }

    /// <summary>
    /// For libc's exported functions the unwind table and .dynsym are two views of the same functions: where an FDE
    /// starts at a symbol, their lengths agree for nearly all (a function whose cold part the compiler split off has a
    /// second FDE for it, and assembly may size its symbol differently from its CFI). Disagreements are printed.
    /// </summary>
    [Fact]
    [Trait("Issue", "18")]
    public void Libc_FDE_lengths_agree_with_its_dynamic_symbol_sizes_for_at_least_90_percent()
    {
        var libc = ElfFile.Open(Libc);
        var extents = libc.FunctionExtents;
        int compared = 0, agreed = 0;
        var seen = new HashSet<ulong>();
        foreach (var symbol in libc.Symbols.ByValue)
        {
            if (symbol.Type != ElfSymbolType.Function || symbol.Size == 0 || !seen.Add(symbol.Value) || !extents.TryGetLength(symbol.Value, out var length))
            {
                continue;
            }

            compared++;
            if (length == symbol.Size)
            {
                agreed++;
            }
            else
            {
                output.WriteLine($"{symbol.Name} at 0x{symbol.Value:x}: symbol 0x{symbol.Size:x} bytes, FDE 0x{length:x}");
            }
        }

        output.WriteLine($"{extents.Count} FDEs; {agreed} of {compared} dynamic function symbols with an FDE at their start agree");
        Assert.True(extents.Count > 1000, $"only {extents.Count} FDEs in libc");
        Assert.True(compared > 500, $"only {compared} symbols compared");
        Assert.True(agreed * 10 >= compared * 9, $"{agreed} of {compared} agree");
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // /tmp is cleaned anyway.
        }
    }

    private static ObjectSymbolTable Table(string path, ElfFile image, ulong bias)
    {
        var loads = image.ProgramHeaders.Where(p => p.IsLoad).ToList();
        var start = bias + loads.Min(p => p.VirtualAddress);
        var end = bias + loads.Max(p => p.VirtualAddress + p.MemorySize);
        return new ObjectSymbolTable(() => [new MappedObject(path, bias, start, end, image) { IsExecutable = true }]);
    }

    private string CompileProgram(params string[] flags)
    {
        var source = Path.Combine(_directory, "extents.c");
        File.WriteAllText(source, Program);
        return Compile(source, "extents" + string.Concat(flags), flags);
    }

    private string Compile(string source, string output, params string[] flags)
    {
        var path = Path.Combine(_directory, output);
        Run("gcc", [.. flags, "-fno-inline", source, "-o", path]);
        return path;
    }

    private static string Strip(string path)
    {
        var stripped = path + ".stripped";
        Run("strip", ["--strip-all", path, "-o", stripped]);
        return stripped;
    }

    private static string Run(string program, params string[] arguments)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode == 0 ? stdout.Result : throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} failed: {errors}");
    }
}
