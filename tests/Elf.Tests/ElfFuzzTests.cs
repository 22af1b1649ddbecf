using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using CsCheck;
using Xunit.Abstractions;

namespace ProcHex.Elf.Tests;

/// <summary>
/// Mutated real ELF files (bit flips, truncations, hostile values in the header, program headers, section
/// headers, the dynamic section and the symbol table) must parse or fail with <see cref="ElfFormatException"/>:
/// never another exception, never a hang. Runs a bounded number of cases and reports them.
/// </summary>
[Trait("Backend", "Linux")]
public sealed class ElfFuzzTests(CompiledFixtures fixtures, ITestOutputHelper output) : IClassFixture<CompiledFixtures>
{
    /// <summary>Bounded for CI; PROCHEX_ELF_FUZZ_CASES asks for a longer run locally.</summary>
    private static readonly int Cases = int.TryParse(Environment.GetEnvironmentVariable("PROCHEX_ELF_FUZZ_CASES"), out var n) && n > 0 ? n : 2000;
    private const ulong MemoryBase = 0x1000_0000;
    private static readonly TimeSpan HangLimit = TimeSpan.FromSeconds(2);

    private static readonly ulong[] Interesting =
    [
        0, 1, 2, 7, 8, 0x38, 0x40, 0xff, 0xffff, 0x1_0000, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff,
        0x1_0000_0000, 0x7fff_ffff_ffff_ffff, 0x8000_0000_0000_0000, ulong.MaxValue - 7, ulong.MaxValue,
    ];

    private enum Kind
    {
        BitFlip,
        Truncate,
        HeaderField,
        ProgramHeaderField,
        SectionHeaderField,
        DynamicEntry,
        SymbolEntry,
        RandomBytes,
    }

    private sealed record Mutation(Kind Kind, int Index, int Field, int Width, ulong Value, double Where)
    {
        public override string ToString() => $"{Kind}[{Index}].{Field} w{Width} = 0x{Value:x} @{Where:F4}";
    }

    /// <summary>The bounded case count, as the test's argument, so every test log names it.</summary>
    public static TheoryData<int> CaseCount() => [Cases];

    [Theory]
    [MemberData(nameof(CaseCount))]
    public void Mutated_ELF_files_parse_or_fail_with_ElfFormatException(int bound)
    {
        var images = BaseImages();
        var crashes = new ConcurrentQueue<string>();
        int cases = 0, parsed = 0, refused = 0;

        var mutation = Gen.Select(Gen.Enum<Kind>(), Gen.Int[0, 64], Gen.Int[0, 63], Gen.OneOf(Gen.Const(1), Gen.Const(2), Gen.Const(4), Gen.Const(8)))
            .Select(Gen.OneOf(Gen.Int[0, Interesting.Length - 1].Select(i => Interesting[i]), Gen.ULong), Gen.Double[0, 1],
                (first, value, where) => new Mutation(first.Item1, first.Item2, first.Item3, first.Item4, value, where));
        var plan = Gen.Select(Gen.Int[0, images.Length - 1], mutation.Array[1, 4]);

        plan.Sample(
            testCase =>
            {
                var (imageIndex, mutations) = testCase;
                var (name, original, reference) = images[imageIndex];
                var bytes = Mutate(original, reference, mutations);
                var clock = Stopwatch.StartNew();
                foreach (var reader in Readers)
                {
                    try
                    {
                        Exercise(reader(bytes));
                        Interlocked.Increment(ref parsed);
                    }
                    catch (ElfFormatException)
                    {
                        Interlocked.Increment(ref refused);
                    }
                    catch (Exception e)
                    {
                        crashes.Enqueue($"{name} {string.Join(", ", mutations.Select(m => m.ToString()))}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
                    }
                }

                if (clock.Elapsed > HangLimit)
                {
                    crashes.Enqueue($"{name} {string.Join(", ", mutations.Select(m => m.ToString()))}: took {clock.Elapsed}");
                }

                Interlocked.Increment(ref cases);
            },
            iter: bound);

        output.WriteLine($"elf fuzz: {cases} cases, {crashes.Count} crashes ({parsed} parses, {refused} format errors over {Readers.Length} readers)");
        foreach (var crash in crashes.Take(5))
        {
            output.WriteLine(crash);
        }

        Assert.Equal(bound, cases);
        Assert.Empty(crashes);
    }

    /// <summary>The three ways an image comes in: a file, an image mapped whole in memory, an object as loaded.</summary>
    private static readonly Func<byte[], ElfFile>[] Readers =
    [
        bytes => ElfFile.Parse(bytes, "fuzz"),
        bytes => ElfFile.ReadImage(new ArrayMemory(MemoryBase, bytes), MemoryBase, (ulong)bytes.Length, "fuzz"),
        bytes => ElfFile.ReadLoaded(new ArrayMemory(MemoryBase, bytes), MemoryBase, "fuzz"),
    ];

    /// <summary>Uses what a parse produced, the way the symbol table does.</summary>
    private static void Exercise(ElfFile file)
    {
        file.Symbols.TryLookup("main", out _);
        file.Symbols.TryResolve(file.Header.Entry, out _, out _);
        foreach (var symbol in file.Symbols.ByValue)
        {
            file.Symbols.TryResolve(symbol.Value + (symbol.Size / 2), out _, out _);
        }

        file.TryComputeLoadBias(0x7f00_0000_0000, 0, out _);
        file.TryGetDynamic(ElfDynamicTag.Debug, out _);
        file.FunctionExtents.TryGetLength(file.Header.Entry, out _); // issue 18: a mutated .eh_frame gives fewer extents, never an exception
        _ = file.ToString();
    }

    private (string Name, byte[] Bytes, ElfFile Reference)[] BaseImages()
    {
        var vdsoBytes = ReadOwnVdso();

        var files = new[] { "/bin/ls", "/lib64/ld-linux-x86-64.so.2", fixtures.Pie, fixtures.NonPie, fixtures.LibraryA }
            .Select(path => (Path.GetFileName(path), File.ReadAllBytes(path)))
            .Append(("[vdso]", vdsoBytes));
        return [.. files.Select(f => (f.Item1, f.Item2, ElfFile.Parse(f.Item2, f.Item1)))];
    }

    /// <summary>Our own [vdso], from /proc/self/maps and /proc/self/mem: an ELF image the kernel made.</summary>
    private static byte[] ReadOwnVdso()
    {
        var line = File.ReadLines("/proc/self/maps").First(l => l.EndsWith("[vdso]", StringComparison.Ordinal));
        var range = line[..line.IndexOf(' ', StringComparison.Ordinal)].Split('-');
        var start = ulong.Parse(range[0], System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
        var end = ulong.Parse(range[1], System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
        var bytes = new byte[end - start];
        using var memory = File.OpenHandle("/proc/self/mem", FileMode.Open, FileAccess.Read);
        Assert.Equal(bytes.Length, RandomAccess.Read(memory, bytes, (long)start));
        return bytes;
    }

    private static byte[] Mutate(byte[] original, ElfFile reference, Mutation[] mutations)
    {
        var bytes = (byte[])original.Clone();
        foreach (var m in mutations)
        {
            var at = (long)(m.Where * Math.Max(bytes.Length - 1, 0));
            switch (m.Kind)
            {
                case Kind.BitFlip when bytes.Length > 0:
                    bytes[at] ^= (byte)(1 << (m.Field & 7));
                    break;
                case Kind.Truncate:
                    bytes = bytes[..(int)at];
                    break;
                case Kind.HeaderField:
                    Write(bytes, 16 + (m.Field % 48), m);
                    break;
                case Kind.ProgramHeaderField when reference.ProgramHeaders.Count > 0:
                    Write(bytes, (long)reference.Header.ProgramHeaderOffset + ((m.Index % reference.ProgramHeaders.Count) * 56) + (m.Field % 56), m);
                    break;
                case Kind.SectionHeaderField when reference.Sections.Count > 0:
                    Write(bytes, (long)reference.Header.SectionHeaderOffset + ((m.Index % reference.Sections.Count) * 64) + m.Field, m);
                    break;
                case Kind.DynamicEntry when reference.TryFindSegment(ElfSegmentType.Dynamic, out var dynamic):
                    Write(bytes, (long)dynamic.Offset + ((m.Index % Math.Max(reference.DynamicEntries.Count, 1)) * 16) + (m.Field % 16), m);
                    break;
                case Kind.SymbolEntry when reference.Sections.FirstOrDefault(s => s.Name == ".dynsym") is { Size: > 0 } dynsym:
                    Write(bytes, (long)dynsym.Offset + ((m.Index % (long)(dynsym.Size / 24)) * 24) + (m.Field % 24), m);
                    break;
                case Kind.RandomBytes:
                    Write(bytes, at, m);
                    break;
                default:
                    break;
            }
        }

        return bytes;
    }

    private static void Write(byte[] bytes, long offset, Mutation m)
    {
        if (offset < 0 || offset + m.Width > bytes.Length)
        {
            return;
        }

        Span<byte> value = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(value, m.Value);
        value[..m.Width].CopyTo(bytes.AsSpan((int)offset));
    }
}
