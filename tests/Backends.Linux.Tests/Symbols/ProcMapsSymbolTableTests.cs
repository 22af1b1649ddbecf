using ProcHex.Elf;
using System.Runtime.InteropServices;
using ProcHex.Backends.Linux.Rtld;
using ProcHex.Backends.Linux.Symbols;

namespace ProcHex.Backends.Linux.Tests;

[Trait("Backend", "Linux")]
[Trait("Spec", "S12")]
public sealed class ProcMapsSymbolTableTests(CompiledFixtures fixtures) : IClassFixture<CompiledFixtures>
{
    [Fact]
    public void A_PIE_executable_is_a_out_at_its_load_bias()
    {
        using var victim = new RunningFixture(fixtures.Pie);
        var symbols = new ProcMapsSymbolTable(victim.Pid, victim.Memory);

        var executable = symbols.Executable!;
        Assert.Equal(fixtures.Pie, executable.Path);
        Assert.Equal(ElfType.SharedObject, executable.Image.Header.Type);
        Assert.NotEqual(0UL, executable.LoadBias);
        Assert.Same(executable.Path, symbols.Objects[0].Path);

        Assert.Equal(victim.Address("main"), symbols.Lookup("a.out", "main"));
        Assert.Equal(victim.Address("probe_target"), symbols.Lookup(null, "probe_target"));
        Assert.Equal(victim.Address("main"), symbols.Lookup("fixture-pie", "main"));
        Assert.Equal(victim.Address("main"), symbols.Lookup(fixtures.Pie, "main"));

        Assert.True(symbols.TryResolve(victim.Address("probe_target") + 1, out var location));
        Assert.Equal("fixture-pie`probe_target+0x1", location.ToString());
    }

    [Fact]
    public void A_non_PIE_executable_has_bias_zero_and_its_linked_addresses()
    {
        using var victim = new RunningFixture(fixtures.NonPie);
        var symbols = new ProcMapsSymbolTable(victim.Pid, victim.Memory);

        var executable = symbols.Executable!;
        Assert.Equal(ElfType.Executable, executable.Image.Header.Type);
        Assert.Equal(0UL, executable.LoadBias);
        Assert.Equal(victim.Address("main"), symbols.Lookup("a.out", "main"));
        Assert.True(executable.Image.Symbols.TryLookup("main", out var main));
        Assert.Equal(main.Value, victim.Address("main"));
        Assert.True(symbols.TryResolve(victim.Address("main"), out var location));
        Assert.Equal("fixture-nopie`main", location.ToString());
    }

    [Fact]
    public void A_static_executable_has_main_and_no_dynamic_linker()
    {
        using var victim = new RunningFixture(fixtures.Static);
        var symbols = new ProcMapsSymbolTable(victim.Pid, victim.Memory);

        Assert.Null(symbols.Executable!.Image.Interpreter);
        Assert.Equal(victim.Address("main"), symbols.Lookup("a.out", "main"));
        Assert.DoesNotContain(symbols.Objects, o => o.Name.StartsWith("ld-linux", StringComparison.Ordinal));
        Assert.Contains(symbols.Objects, o => o.Path == "[vdso]");
        Assert.Null(GlibcRtldAgent.TryOpen(victim.Pid, victim.Memory, symbols));
    }

    [Fact]
    public void A_library_loaded_twice_is_two_objects_told_apart_by_path()
    {
        using var victim = new RunningFixture(fixtures.Pie, fixtures.LibraryA, fixtures.LibraryB);
        var symbols = new ProcMapsSymbolTable(victim.Pid, victim.Memory);
        var a = victim.LibraryAddress(fixtures.LibraryA);
        var b = victim.LibraryAddress(fixtures.LibraryB);
        Assert.NotEqual(a, b);

        Assert.Equal(a, symbols.Lookup(fixtures.LibraryA, "twice_function"));
        Assert.Equal(b, symbols.Lookup(fixtures.LibraryB, "twice_function"));
        Assert.Equal(a, symbols.Lookup("libtwice.so", "twice_function")); // the first in load order
        Assert.Equal(a, symbols.Lookup("libtwice", "twice_function"));
        Assert.Equal(a, symbols.Lookup(null, "twice_function"));

        // Load order comes from the linker's list: the executable, its needed libraries, then the dlopens in order.
        var names = symbols.Objects.Select(o => o.Path).ToList();
        Assert.True(names.IndexOf(fixtures.LibraryA) < names.IndexOf(fixtures.LibraryB));
        Assert.True(names.FindIndex(p => p.EndsWith("/libc.so.6", StringComparison.Ordinal)) < names.IndexOf(fixtures.LibraryA));

        Assert.True(symbols.TryResolve(b + 4, out var location));
        Assert.Equal("libtwice.so`twice_function+0x4", location.ToString());
        Assert.True(symbols.TryFindObject(b, out var mappedB));
        Assert.Equal(fixtures.LibraryB, mappedB.Path);
    }

    [Fact]
    public void A_library_deleted_after_loading_still_has_its_symbols()
    {
        var directory = Path.Combine(fixtures.Directory, $"deleted-{Guid.NewGuid():n}");
        Directory.CreateDirectory(directory);
        var library = Path.Combine(directory, "libgone.so");
        File.Copy(fixtures.LibraryA, library);
        using var victim = new RunningFixture(fixtures.Pie, library);
        File.Delete(library);

        var symbols = new ProcMapsSymbolTable(victim.Pid, victim.Memory);

        Assert.Equal(victim.LibraryAddress(library), symbols.Lookup("libgone.so", "twice_function"));
        Assert.Equal(victim.LibraryAddress(library), symbols.Lookup(library, "twice_function"));
    }

    [Fact]
    public void Lookups_that_miss_say_what_missed()
    {
        using var victim = new RunningFixture(fixtures.Pie);
        var symbols = new ProcMapsSymbolTable(victim.Pid, victim.Memory);

        Assert.False(symbols.TryLookup("libnope.so", "malloc", out _));
        Assert.False(symbols.TryLookup("libc.so.6", "no_such_function", out _));
        Assert.False(symbols.TryLookup(null, "no_such_function", out _));

        var noObject = Assert.Throws<SymbolLookupException>(() => symbols.Lookup("libnope.so", "malloc"));
        Assert.StartsWith("no object named \"libnope.so\" is loaded (loaded: a.out (fixture-pie), ", noObject.Message, StringComparison.Ordinal);
        Assert.Contains("libc.so.6", noObject.Message, StringComparison.Ordinal);
        Assert.Equal("libc.so.6 does not define \"no_such_function\"", Assert.Throws<SymbolLookupException>(() => symbols.Lookup("libc.so.6", "no_such_function")).Message);
        Assert.StartsWith("no loaded object defines \"no_such_function\"", Assert.Throws<SymbolLookupException>(() => symbols.Lookup(null, "no_such_function")).Message, StringComparison.Ordinal);
        Assert.False(symbols.TryResolve(0x10, out _));
    }

    [Fact]
    public void Our_own_libc_symbols_match_what_the_loader_resolves()
    {
        var symbols = new ProcMapsSymbolTable(Environment.ProcessId, ProcMemory.Self);
        var libc = NativeLibrary.Load("libc.so.6");

        foreach (var name in new[] { "malloc", "free", "printf", "pthread_create", "clock_gettime" })
        {
            Assert.Equal((ulong)NativeLibrary.GetExport(libc, name), symbols.Lookup("libc.so.6", name));
            Assert.True(symbols.TryResolve((ulong)NativeLibrary.GetExport(libc, name), out var location));
            Assert.Equal("libc.so.6", location.ObjectName);
            Assert.Equal(0UL, location.Offset);
        }

        Assert.Contains(symbols.Objects, o => o.Name == "libcoreclr.so");
        Assert.DoesNotContain(symbols.Objects, o => o.Name.EndsWith(".dll", StringComparison.Ordinal)); // managed assemblies are mapped, but not ELF
    }

    [Fact]
    public void Our_own_vdso_is_read_from_memory()
    {
        var symbols = new ProcMapsSymbolTable(Environment.ProcessId, ProcMemory.Self);

        Assert.True(symbols.TryFindObject("[vdso]", out var vdso));
        Assert.Equal(symbols.Auxv.VdsoBase, vdso.Start);
        Assert.Equal("linux-vdso.so.1", vdso.Image.SoName);
        Assert.Equal(vdso.LoadBias, symbols.Objects.First(o => o.Path == "[vdso]").BaseAddress);

        var clock = symbols.Lookup("[vdso]", "__vdso_clock_gettime");
        Assert.Equal(clock, symbols.Lookup("linux-vdso.so.1", "__vdso_clock_gettime"));
        Assert.True(vdso.Contains(clock));
        Assert.True(symbols.TryResolve(clock + 2, out var location));
        Assert.Equal("[vdso]", location.ObjectName);
        Assert.Equal(2UL, location.Offset);
        Assert.Equal(clock, symbols.Lookup("[vdso]", location.Symbol!));

        // The vDSO as the linker loaded it (dynamic section only) agrees with the whole image.
        var loaded = ElfFile.ReadLoaded(ProcMemory.Self, vdso.Start, "[vdso]");
        Assert.True(loaded.Symbols.TryLookup("__vdso_clock_gettime", out var fromDynamic));
        Assert.Equal(clock, vdso.LoadBias + fromDynamic.Value);
    }

    [Fact]
    public void A_library_read_from_memory_has_the_dynamic_symbols_of_its_file()
    {
        var symbols = new ProcMapsSymbolTable(Environment.ProcessId, ProcMemory.Self);
        Assert.True(symbols.TryFindObject("libc.so.6", out var libc));

        var loaded = ElfFile.ReadLoaded(ProcMemory.Self, libc.Start, libc.Path);

        Assert.Empty(loaded.Sections);
        Assert.Equal("libc.so.6", loaded.SoName);
        var fileDynamic = ElfFile.Open(libc.Path);
        foreach (var name in new[] { "malloc", "free", "dlopen", "qsort" })
        {
            Assert.True(loaded.Symbols.TryLookup(name, out var inMemory));
            Assert.True(fileDynamic.Symbols.TryLookup(name, out var inFile));
            Assert.Equal(inFile.Value, inMemory.Value);
        }
    }

    [Fact]
    public async Task Refresh_parses_only_new_objects_and_readers_see_whole_snapshots()
    {
        var symbols = new ProcMapsSymbolTable(Environment.ProcessId, ProcMemory.Self);
        _ = symbols.Objects;
        var parsed = symbols.FilesParsed;

        using var stop = new CancellationTokenSource();
        var failures = 0;
        var readers = Enumerable.Range(0, 4).Select(reader => Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                if (!symbols.TryLookup("libc.so.6", "malloc", out _) || symbols.Objects.Count == 0)
                {
                    Interlocked.Increment(ref failures);
                }
            }
        })).ToArray();

        for (var i = 0; i < 5; i++)
        {
            symbols.Refresh();
        }

        stop.Cancel();
        await Task.WhenAll(readers);
        Assert.Equal(0, failures);

        // Only what the runtime mapped meanwhile may have been parsed; libc, coreclr and friends were not re-read.
        Assert.True(symbols.FilesParsed - parsed < 5, $"{symbols.FilesParsed - parsed} files parsed again");
    }

    [Fact]
    public void Symbol_tables_of_processes_that_map_the_same_file_share_one_parsed_copy()
    {
        // 1,000 victims map the same libc: it is parsed once and held once (bench/ProcHex.Scale), while each
        // table still has its own cache to sweep.
        using var first = new RunningFixture(fixtures.Pie);
        using var second = new RunningFixture(fixtures.Pie);
        var a = new ProcMapsSymbolTable(first.Pid, first.Memory);
        var b = new ProcMapsSymbolTable(second.Pid, second.Memory);

        Assert.True(a.TryFindObject("a.out", out var executableA));
        Assert.True(b.TryFindObject("a.out", out var executableB));
        Assert.Same(executableA.Image, executableB.Image);
        Assert.True(a.TryFindObject("libc.so.6", out var libcA));
        Assert.True(b.TryFindObject("libc.so.6", out var libcB));
        Assert.Same(libcA.Image, libcB.Image);
        Assert.Equal(first.Address("main") - executableA.LoadBias, second.Address("main") - executableB.LoadBias);
    }
}
