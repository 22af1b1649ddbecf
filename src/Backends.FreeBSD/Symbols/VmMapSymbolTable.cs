using System.Diagnostics.CodeAnalysis;
using ProcHex.Elf;
using ProcHex.Ports;

namespace ProcHex.Backends.FreeBSD;

/// <summary>
/// The symbols of a FreeBSD victim's current image. KERN_PROC_VMMAP says which files are mapped where (what
/// lib/librtld_db's rd_loadobj_iter uses too: it never walks link_map), the files give the symbols, and
/// KERN_PROC_PATHNAME says which object is the executable. When a file cannot be opened, the object is read from
/// the victim's memory (headers, dynamic section, .dynsym). Nothing here stops or traces the victim.
/// </summary>
/// <remarks>
/// An object is the run of mappings of one file that starts at file offset 0. Load bias: a mapping at S of file
/// offset O, inside the segment with p_vaddr/p_offset, gives S - O - (p_vaddr - p_offset): right for PIE and
/// non-PIE alike (the Linux table's rule; the kernel data differs, the ELF arithmetic does not).
/// </remarks>
internal sealed class VmMapSymbolTable : ISymbolTable
{
    private readonly IFreeBsdKernel _kernel;
    private readonly int _pid;
    private readonly IVictimMemory _memory;
    private readonly ObjectSymbolTable _table;
    private readonly ElfFileCache _files = new();

    public VmMapSymbolTable(IFreeBsdKernel kernel, int pid, IVictimMemory memory)
    {
        _kernel = kernel;
        _pid = pid;
        _memory = memory;
        _table = new ObjectSymbolTable(Discover);
    }

    public IReadOnlyList<LoadedObject> Objects => _table.Objects;

    public void Refresh() => _table.Refresh();

    public void Reset()
    {
        _files.Clear();
        _table.Reset();
    }

    public bool TryLookup(string? objectName, string symbol, out ulong address) => _table.TryLookup(objectName, symbol, out address);

    public bool TryResolve(ulong address, out SymbolLocation location) => _table.TryResolve(address, out location);

    public IReadOnlyList<FunctionSymbol> FunctionsOf(string objectName) => _table.FunctionsOf(objectName);

    public IndirectFunction? FindIndirectFunction(string name, ulong address) => _table.FindIndirectFunction(name, address);

    public bool? References(string objectName, string symbol) => _table.References(objectName, symbol);

    /// <inheritdoc/>
    public int? FunctionSize(ulong address) => _table.FunctionSize(address);

    /// <summary>The object mapped at <paramref name="address"/> (the rtld agent finds ld-elf.so.1 by AT_BASE).</summary>
    public bool TryFindObject(ulong address, [NotNullWhen(true)] out MappedObject? mapped) => _table.TryFindObject(address, out mapped);

    private List<MappedObject> Discover()
    {
        var executablePath = VmMap.ExecutablePath(_kernel, _pid);
        var objects = new List<MappedObject>();
        foreach (var run in GroupByObject(VmMap.Read(_kernel, _pid)))
        {
            var isExecutable = run[0].Path == executablePath;
            if (!isExecutable && !run.Any(m => m.IsExecutable))
            {
                continue;
            }

            var image = Open(run[0]);
            if (image is not null && image.TryComputeLoadBias(run[0].Start, run[0].Offset, out var bias))
            {
                objects.Add(new MappedObject(run[0].Path, bias, run[0].Start, run[^1].End, image) { IsExecutable = isExecutable });
            }
        }

        _files.Sweep();
        return objects;
    }

    private ElfFile? Open(VmMapEntry first)
    {
        if (File.Exists(first.Path) && _files.GetOrOpen(first.Path, first.FileSystemId, first.FileId, out _) is { } file)
        {
            return file;
        }

        try
        {
            return ElfFile.ReadLoaded(_memory, first.Start, first.Path);
        }
        catch (TracerException)
        {
            // Not readable now (a running victim under control, an unmapped header): the object has no symbols.
            return null;
        }
    }

    /// <summary>Consecutive file mappings of one path, each run starting at file offset 0.</summary>
    private static List<List<VmMapEntry>> GroupByObject(IReadOnlyList<VmMapEntry> entries)
    {
        var runs = new List<List<VmMapEntry>>();
        var open = new Dictionary<string, List<VmMapEntry>>(StringComparer.Ordinal);
        foreach (var entry in entries.Where(e => e.IsFile))
        {
            if (entry.Offset != 0 && open.TryGetValue(entry.Path, out var run) && entry.Start >= run[^1].End)
            {
                run.Add(entry);
                continue;
            }

            var fresh = new List<VmMapEntry> { entry };
            open[entry.Path] = fresh;
            runs.Add(fresh);
        }

        return runs;
    }
}
