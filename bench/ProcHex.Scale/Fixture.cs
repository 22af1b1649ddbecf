using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace ProcHex.Scale;

/// <summary>
/// scale-victim.c compiled with gcc into a temporary directory, and what its ELF file says about tick(),
/// last_tick_ns and ticks: read here independently of ProcHex, so the release check does not trust the library
/// it checks.
/// </summary>
internal sealed class Fixture : IDisposable
{
    private readonly string _directory;
    private readonly byte[] _image;
    private readonly List<(ulong Offset, ulong Vaddr, ulong FileSize)> _loads = [];
    private readonly Dictionary<string, ulong> _symbols = [];

    private Fixture(string directory, string path)
    {
        _directory = directory;
        Path = path;
        _image = File.ReadAllBytes(path);
        ParseElf();
    }

    public string Path { get; }

    /// <summary>Link-time address of the first PT_LOAD with file offset 0 (0 for a PIE).</summary>
    public ulong FirstLoadVaddr => _loads.First(l => l.Offset == 0).Vaddr;

    public static Fixture Compile()
    {
        var source = System.IO.Path.Combine(AppContext.BaseDirectory, "scale-victim.c");
        if (!File.Exists(source))
        {
            throw new FileNotFoundException("scale-victim.c is not beside the benchmark", source);
        }

        var dir = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"prochex-scale-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        var output = System.IO.Path.Combine(dir, "scale-victim");
        // -O0: tick() opens with push %rbp; mov %rsp,%rbp, as most function entries a pid provider probes do.
        Run("gcc", "-O0", "-Wall", "-Wextra", "-Werror", "-o", output, source);
        return new Fixture(dir, output);
    }

    public ulong Symbol(string name) =>
        _symbols.TryGetValue(name, out var value) ? value : throw new InvalidOperationException($"{name} is not in {Path}");

    /// <summary>The bytes of the file at link-time address <paramref name="vaddr"/>.</summary>
    public ReadOnlySpan<byte> BytesAt(ulong vaddr, int count)
    {
        foreach (var (offset, start, size) in _loads)
        {
            if (vaddr >= start && vaddr + (ulong)count <= start + size)
            {
                return _image.AsSpan(checked((int)(vaddr - start + offset)), count);
            }
        }

        throw new InvalidOperationException($"0x{vaddr:x} is not in a loaded segment of {Path}");
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private void ParseElf()
    {
        var e = _image.AsSpan();
        if (e.Length < 64 || !e[..4].SequenceEqual((ReadOnlySpan<byte>)[0x7f, 0x45, 0x4c, 0x46]) || e[4] != 2 || e[5] != 1)
        {
            throw new InvalidDataException($"{Path} is not a little-endian ELF64 file");
        }

        var phoff = BinaryPrimitives.ReadUInt64LittleEndian(e[0x20..]);
        var shoff = BinaryPrimitives.ReadUInt64LittleEndian(e[0x28..]);
        int phentsize = BinaryPrimitives.ReadUInt16LittleEndian(e[0x36..]);
        int phnum = BinaryPrimitives.ReadUInt16LittleEndian(e[0x38..]);
        int shentsize = BinaryPrimitives.ReadUInt16LittleEndian(e[0x3A..]);
        int shnum = BinaryPrimitives.ReadUInt16LittleEndian(e[0x3C..]);
        for (var i = 0; i < phnum; i++)
        {
            var ph = e[(int)(phoff + (ulong)(i * phentsize))..];
            if (BinaryPrimitives.ReadUInt32LittleEndian(ph) == 1)
            {
                _loads.Add((BinaryPrimitives.ReadUInt64LittleEndian(ph[8..]), BinaryPrimitives.ReadUInt64LittleEndian(ph[0x10..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(ph[0x20..])));
            }
        }

        for (var i = 0; i < shnum; i++)
        {
            var sh = e[(int)(shoff + (ulong)(i * shentsize))..];
            if (BinaryPrimitives.ReadUInt32LittleEndian(sh[4..]) != 2)
            {
                continue; // not SHT_SYMTAB
            }

            var symOffset = (int)BinaryPrimitives.ReadUInt64LittleEndian(sh[0x18..]);
            var symSize = (int)BinaryPrimitives.ReadUInt64LittleEndian(sh[0x20..]);
            var link = (int)BinaryPrimitives.ReadUInt32LittleEndian(sh[0x28..]);
            var strtab = e[(int)(shoff + (ulong)(link * shentsize))..];
            var strOffset = (int)BinaryPrimitives.ReadUInt64LittleEndian(strtab[0x18..]);
            for (var s = symOffset; s + 24 <= symOffset + symSize; s += 24)
            {
                var nameOffset = strOffset + (int)BinaryPrimitives.ReadUInt32LittleEndian(e[s..]);
                var end = e[nameOffset..].IndexOf((byte)0);
                var name = Encoding.ASCII.GetString(e.Slice(nameOffset, end));
                var value = BinaryPrimitives.ReadUInt64LittleEndian(e[(s + 8)..]);
                if (name.Length > 0 && value != 0)
                {
                    _symbols.TryAdd(name, value);
                }
            }
        }
    }

    private static void Run(string file, params string[] args)
    {
        // Synchronous reads only: async ones would start the runtime's socket engine thread before the count.
        var start = new ProcessStartInfo(file) { RedirectStandardError = true };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        using var p = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {file}");
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"{file} {string.Join(' ', args)} failed ({p.ExitCode}): {stderr}"));
        }
    }
}
