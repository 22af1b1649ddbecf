using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using ProcHex.Elf;
using ProcHex.Ports;

namespace ProcHex.Backends.Linux.Symbols;

/// <summary>
/// The symbols of a Linux victim's current image, found through /proc: /proc/PID/maps says which files are
/// mapped where, the files (or, when a file cannot be opened, the victim's memory) give the symbols,
/// /proc/PID/auxv says which object is the executable, and the linker's r_debug list, once it exists, gives the
/// load order. Works on a victim that is running (a read-only grab): nothing here stops or traces it.
/// </summary>
/// <remarks>
/// An object is the run of mappings of one file (device and inode) that starts at file offset 0; a file mapped
/// twice (the same library in two link-map namespaces) is two objects. Mappings of files that are not ELF
/// (locale archives, a .NET host's assemblies) or that map no code are not objects. Load bias: a mapping that
/// starts at S and maps file offset O of the segment with p_vaddr/p_offset has bias S - O - (p_vaddr - p_offset),
/// right for PIE (bias = where it was put) and non-PIE (bias 0) alike.
/// </remarks>
internal sealed class ProcMapsSymbolTable : ISymbolTable
{
    private const string VdsoName = "[vdso]";

    private readonly ILinuxKernel _kernel;
    private readonly IVictimMemory _memory;
    private readonly ObjectSymbolTable _table;
    private readonly ElfFileCache _files = new();

    /// <summary>Objects read from memory (the vDSO, deleted files) by identity and address; kept until <see cref="Reset"/>.</summary>
    private readonly Dictionary<(ulong Device, ulong Inode, ulong Start), ElfFile?> _memoryImages = [];

    /// <summary>Replaced whole on each refresh, so a reader on another thread never sees half of an old vector.</summary>
    private StrongBox<ProcAuxv> _auxv = new(default);

    /// <summary>Where this victim's paths resolve from here, as of the last refresh: null for our own file system.</summary>
    private string? _objectRoot;

    /// <summary>A symbol table over the mappings of <paramref name="pid"/>, reading its ELF images through <paramref name="memory"/> where their files are gone.</summary>
    /// <param name="pid">The victim.</param>
    /// <param name="memory">The victim's memory.</param>
    public ProcMapsSymbolTable(int pid, IVictimMemory memory)
        : this(LinuxKernel.Instance, pid, memory)
    {
    }

    /// <summary>Reads /proc through <paramref name="kernel"/>: a victim's own owner's.</summary>
    internal ProcMapsSymbolTable(ILinuxKernel kernel, int pid, IVictimMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        _kernel = kernel;
        Pid = pid;
        _memory = memory;
        _table = new ObjectSymbolTable(Discover);
    }

    /// <summary>The victim whose mappings this table reads.</summary>
    public int Pid { get; }

    /// <inheritdoc/>
    public IReadOnlyList<LoadedObject> Objects => _table.Objects;

    /// <summary>The objects with their parsed images and extents, the executable first.</summary>
    public IReadOnlyList<MappedObject> MappedObjects => _table.MappedObjects;

    /// <summary>The main executable's mapping, once the maps have been read.</summary>
    public MappedObject? Executable => _table.Executable;

    /// <summary>The auxiliary vector as of the last refresh (default when it could not be read).</summary>
    public ProcAuxv Auxv
    {
        get
        {
            _ = _table.Objects;
            return Volatile.Read(ref _auxv).Value;
        }
    }

    /// <summary>How many files were parsed (not taken from the cache) since this table was made: cheap refreshes show here.</summary>
    public int FilesParsed => _files.ParseCount;

    /// <inheritdoc/>
    public void Refresh() => _table.Refresh();

    /// <inheritdoc/>
    public void Reset()
    {
        // A new image: files with the same identity may well be mapped again, but the vDSO moved and nothing
        // from the old address space may leak into the new one.
        _files.Clear();
        lock (_memoryImages)
        {
            _memoryImages.Clear();
        }

        _table.Reset();
    }

    /// <inheritdoc/>
    public bool TryLookup(string? objectName, string symbol, out ulong address) => _table.TryLookup(objectName, symbol, out address);

    /// <inheritdoc cref="ObjectSymbolTable.Lookup"/>
    public ulong Lookup(string? objectName, string symbol) => _table.Lookup(objectName, symbol);

    /// <inheritdoc/>
    public bool TryResolve(ulong address, out SymbolLocation location) => _table.TryResolve(address, out location);

    /// <inheritdoc/>
    public IReadOnlyList<FunctionSymbol> FunctionsOf(string objectName) => _table.FunctionsOf(objectName);

    /// <inheritdoc/>
    public IndirectFunction? FindIndirectFunction(string name, ulong address) => _table.FindIndirectFunction(name, address);

    /// <inheritdoc/>
    public bool? References(string objectName, string symbol) => _table.References(objectName, symbol);

    /// <inheritdoc/>
    public int? FunctionSize(ulong address) => _table.FunctionSize(address);

    /// <summary>The mapped object named <paramref name="objectName"/> (a path or a file name); false when none is mapped.</summary>
    /// <param name="objectName">The path or file name.</param>
    /// <param name="mapped">The object.</param>
    public bool TryFindObject(string objectName, [NotNullWhen(true)] out MappedObject? mapped) => _table.TryFindObject(objectName, out mapped);

    /// <summary>The mapped object that contains <paramref name="address"/>; false when none does.</summary>
    /// <param name="address">An address in the victim.</param>
    /// <param name="mapped">The object.</param>
    public bool TryFindObject(ulong address, [NotNullWhen(true)] out MappedObject? mapped) => _table.TryFindObject(address, out mapped);

    private List<MappedObject> Discover()
    {
        var maps = ProcMaps.ReadOrThrow(_kernel, Pid);
        _objectRoot = _kernel.ObjectRoot(Pid);

        var auxv = ReadAuxv();
        Volatile.Write(ref _auxv, new StrongBox<ProcAuxv>(auxv));
        var executablePath = ReadExecutablePath();
        var objects = new List<MappedObject>();
        foreach (var run in GroupByObject(maps))
        {
            var mapped = Load(run, auxv, executablePath);
            if (mapped is not null)
            {
                objects.Add(mapped);
            }
        }

        _files.Sweep();
        return OrderByLinkMap(objects);
    }

    private MappedObject? Load(ObjectRun run, ProcAuxv auxv, string? executablePath)
    {
        var first = run.Mappings[0];
        var isExecutable = auxv.ProgramHeaders != 0
            ? auxv.ProgramHeaders >= run.Start && auxv.ProgramHeaders < run.End
            : executablePath is not null && run.Path == executablePath;
        if (!isExecutable && !run.Mappings.Any(m => m.IsExecutable))
        {
            // A file mapped as data (even an ELF one) is not a loaded object.
            return null;
        }

        var image = run.Path == VdsoName ? ReadFromMemory(run, whole: true) : OpenFile(run) ?? ReadFromMemory(run, whole: false);
        if (image is null || !image.TryComputeLoadBias(first.Start, first.Offset, out var bias))
        {
            return null;
        }

        return new MappedObject(run.Path, bias, run.Start, run.End, image) { IsExecutable = isExecutable };
    }

    private ElfFile? OpenFile(ObjectRun run)
    {
        var first = run.Mappings[0];
        // A process in another mount namespace or root (a container, a chroot) names its files as it sees them:
        // through /proc/PID/root they are its files, where the same path here may be another file or none.
        IEnumerable<string> candidates = first.IsDeleted
            ? [$"{_kernel.ProcRoot}/{Pid}/map_files/{first.Start:x}-{first.End:x}"]
            : _objectRoot is { } root ? [root + first.Path] : [first.Path, $"{_kernel.ProcRoot}/{Pid}/root{first.Path}"];
        foreach (var candidate in candidates)
        {
            if (File.Exists(candidate))
            {
                var image = _files.GetOrOpen(candidate, first.Device, first.Inode, out _);
                if (image is not null)
                {
                    return image;
                }
            }
        }

        return null;
    }

    /// <summary>
    /// The vDSO exists only in memory and is mapped whole, sections included; other objects read from memory
    /// (their file deleted or out of reach) give only what the linker mapped: headers, dynamic section, .dynsym.
    /// </summary>
    private ElfFile? ReadFromMemory(ObjectRun run, bool whole)
    {
        var first = run.Mappings[0];
        if (first.Offset != 0 || !first.IsReadable)
        {
            return null;
        }

        var key = (first.Device, first.Inode, first.Start);
        lock (_memoryImages)
        {
            if (_memoryImages.TryGetValue(key, out var cached))
            {
                return cached;
            }
        }

        ElfFile? image;
        try
        {
            image = whole
                ? ElfFile.ReadImage(_memory, first.Start, run.End - run.Start, run.Path)
                : ElfFile.ReadLoaded(_memory, first.Start, run.Path);
        }
        catch (ElfFormatException)
        {
            image = null;
        }

        lock (_memoryImages)
        {
            _memoryImages[key] = image;
        }

        return image;
    }

    private ProcAuxv ReadAuxv()
    {
        try
        {
            return ProcAuxv.Parse(_kernel.ReadAuxv(Pid));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return default;
        }
    }

    private string? ReadExecutablePath()
    {
        try
        {
            var target = _kernel.ReadExeLink(Pid);
            return target?.EndsWith(" (deleted)", StringComparison.Ordinal) == true ? target[..^" (deleted)".Length] : target;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// Orders objects as the linker loaded them: executable, then r_debug's list, then whatever the list does not
    /// name (in address order). Without a readable list (before the linker ran, a static program) address order
    /// stays. Nodes are matched to objects by l_ld, the dynamic section's address, which lies inside the object.
    /// </summary>
    private List<MappedObject> OrderByLinkMap(List<MappedObject> objects)
    {
        var executable = objects.Find(o => o.IsExecutable);
        if (executable is null)
        {
            return objects;
        }

        try
        {
            if (DynamicLinkerState.FindFromExecutable(_memory, executable) is not { IsInitialized: true } rdebug)
            {
                return objects;
            }

            var rank = new Dictionary<MappedObject, int>();
            var nodes = rdebug.ReadLinkMaps(_memory);
            for (var i = 0; i < nodes.Count; i++)
            {
                var owner = objects.Find(o => o.Contains(nodes[i].DynamicSection));
                if (owner is not null)
                {
                    rank.TryAdd(owner, i);
                }
            }

            return [.. objects.OrderBy(o => o.IsExecutable ? -1 : rank.GetValueOrDefault(o, int.MaxValue)).ThenBy(o => o.Start)];
        }
        catch (ElfFormatException)
        {
            // The list is being changed under us or is not there yet: address order is still a valid answer.
            return objects;
        }
    }

    private static List<ObjectRun> GroupByObject(IReadOnlyList<ProcMapsEntry> maps)
    {
        var runs = new List<ObjectRun>();
        var open = new Dictionary<(ulong Device, ulong Inode, string Path), ObjectRun>();
        foreach (var entry in maps)
        {
            if (entry.Path == VdsoName)
            {
                runs.Add(new ObjectRun(entry));
                continue;
            }

            if (!entry.IsFile)
            {
                continue;
            }

            var key = (entry.Device, entry.Inode, entry.Path);
            // Not "offset grows": the RELRO page is often split off the page before it with the same offset.
            if (entry.Offset != 0 && open.TryGetValue(key, out var run) && entry.Start >= run.End)
            {
                run.Add(entry);
                continue;
            }

            // Offset 0 begins an object (a second mapping of the same file is a second object).
            var fresh = new ObjectRun(entry);
            open[key] = fresh;
            runs.Add(fresh);
        }

        return runs;
    }

    /// <summary>The consecutive mappings of one object, in address order.</summary>
    private sealed class ObjectRun(ProcMapsEntry first)
    {
        private readonly List<ProcMapsEntry> _mappings = [first];

        public List<ProcMapsEntry> Mappings => _mappings;

        public string Path => first.Path;

        public ulong Start => first.Start;

        public ulong End { get; private set; } = first.End;

        public void Add(ProcMapsEntry entry)
        {
            _mappings.Add(entry);
            End = entry.End;
        }
    }
}
