using System.Diagnostics.CodeAnalysis;
using ProcHex.Ports;

namespace ProcHex.Elf;

/// <summary>
/// The <see cref="ISymbolTable"/> of an ELF-based victim, over the list of mapped objects a backend discovers.
/// Lookups read an immutable snapshot; <see cref="Refresh"/> builds the next one and publishes it with one
/// reference write, so readers (a read-only grab walking stacks, the control loop planting probes) never wait
/// for or observe a half-built table.
/// </summary>
/// <remarks>
/// Object names: "a.out" is the executable; otherwise a full path, a basename ("libc.so.6"), or a stem without
/// dots ("libc") matching the basename up to its first dot; the object's DT_SONAME also names it. When several objects share a name (one library
/// loaded from two directories) the first in load order wins; a full path picks exactly.
/// </remarks>
public sealed class ObjectSymbolTable : ISymbolTable
{
    /// <summary>The alias of the executable in <c>object`symbol</c> names.</summary>
    public const string ExecutableAlias = "a.out";

    private readonly Func<IReadOnlyList<MappedObject>> _discover;
    private readonly Lock _refreshLock = new();
    private Snapshot? _snapshot;

    /// <param name="discover">
    /// Reads the victim's objects now, in load order; the executable (flagged) may be anywhere, it is listed first.
    /// Called by <see cref="Refresh"/> and <see cref="Reset"/>, one call at a time.
    /// </param>
    public ObjectSymbolTable(Func<IReadOnlyList<MappedObject>> discover)
    {
        ArgumentNullException.ThrowIfNull(discover);
        _discover = discover;
    }

    /// <inheritdoc/>
    public IReadOnlyList<LoadedObject> Objects => Current.Loaded;

    /// <summary>The objects with their images, the executable first.</summary>
    public IReadOnlyList<MappedObject> MappedObjects => Current.Objects;

    /// <summary>The main executable's mapping, once the objects have been read.</summary>
    public MappedObject? Executable => Current.Executable;

    /// <inheritdoc/>
    public void Refresh()
    {
        lock (_refreshLock)
        {
            Volatile.Write(ref _snapshot, new Snapshot(_discover()));
        }
    }

    /// <inheritdoc/>
    public void Reset() => Refresh();

    /// <summary>The mapped object named <paramref name="objectName"/> (a path or file name), or the executable when null; false when none is mapped.</summary>
    /// <param name="objectName">The path or file name; null for the executable.</param>
    /// <param name="mapped">The object.</param>
    public bool TryFindObject(string? objectName, [NotNullWhen(true)] out MappedObject? mapped)
    {
        mapped = objectName is null ? null : Current.Find(objectName);
        return mapped is not null;
    }

    /// <inheritdoc/>
    public bool TryLookup(string? objectName, string symbol, out ulong address)
    {
        ArgumentNullException.ThrowIfNull(symbol);
        var snapshot = Current;
        if (objectName is not null)
        {
            var mapped = snapshot.Find(objectName);
            if (mapped is not null && mapped.Image.Symbols.TryLookup(symbol, out var found))
            {
                address = unchecked(mapped.LoadBias + found.Value);
                return true;
            }

            address = 0;
            return false;
        }

        foreach (var mapped in snapshot.Objects)
        {
            if (mapped.Image.Symbols.TryLookup(symbol, out var found))
            {
                address = unchecked(mapped.LoadBias + found.Value);
                return true;
            }
        }

        address = 0;
        return false;
    }

    /// <summary>Like <see cref="TryLookup"/>, but a miss says which part missed and what there is instead.</summary>
    /// <exception cref="SymbolLookupException">No such object, or no such symbol in it.</exception>
    public ulong Lookup(string? objectName, string symbol)
    {
        if (TryLookup(objectName, symbol, out var address))
        {
            return address;
        }

        var snapshot = Current;
        if (objectName is not null && snapshot.Find(objectName) is null)
        {
            var names = string.Join(", ", snapshot.Objects.Take(12).Select(o => o.IsExecutable ? $"{ExecutableAlias} ({o.Name})" : o.Name));
            var more = snapshot.Objects.Length > 12 ? $", and {snapshot.Objects.Length - 12} more" : string.Empty;
            throw new SymbolLookupException($"no object named \"{objectName}\" is loaded (loaded: {names}{more})");
        }

        throw new SymbolLookupException(objectName is null
            ? $"no loaded object defines \"{symbol}\" ({snapshot.Objects.Length} objects searched)"
            : $"{objectName} does not define \"{symbol}\"");
    }

    /// <inheritdoc/>
    public bool TryResolve(ulong address, out SymbolLocation location)
    {
        var mapped = Current.FindByAddress(address);
        if (mapped is null)
        {
            location = default;
            return false;
        }

        location = mapped.Image.Symbols.TryResolve(unchecked(address - mapped.LoadBias), out var symbol, out var offset)
            ? new SymbolLocation(mapped.Name, symbol.Name, offset)
            : new SymbolLocation(mapped.Name, null, address - mapped.Start);
        return true;
    }

    /// <inheritdoc/>
    /// <remarks>
    /// A sized symbol that starts at the address answers first; otherwise an FDE of the object's .eh_frame that starts
    /// exactly there (a stripped libc's IFUNC implementations, <c>__strlen_avx2</c>, have no symbol but have CFI), which
    /// answers up to the next FDE's start when its own range is shorter (<see cref="FunctionExtents.TryGetReach"/>). An
    /// address inside a function is never taken for an entry.
    /// </remarks>
    public int? FunctionSize(ulong address)
    {
        const ulong UnwindReachLimit = 64 * 1024;
        var mapped = Current.FindByAddress(address);
        if (mapped is null)
        {
            return null;
        }

        var value = unchecked(address - mapped.LoadBias);
        if (mapped.Image.Symbols.TryResolve(value, out var symbol, out var offset) && offset == 0 && symbol.Size is > 0 and <= int.MaxValue)
        {
            return (int)symbol.Size;
        }

        return mapped.Image.FunctionExtents.TryGetReach(value, UnwindReachLimit, out var reach) && reach <= int.MaxValue ? (int)reach : null;
    }

    /// <inheritdoc/>
    public bool? References(string objectName, string symbol)
    {
        ArgumentNullException.ThrowIfNull(objectName);
        ArgumentNullException.ThrowIfNull(symbol);
        if (Current.Find(objectName) is not { } mapped || mapped.Image.Sections.Count == 0)
        {
            return null;
        }

        return mapped.Image.Relocations.Any(r => r.SymbolName is { } named && BareName(named) == symbol);
    }

    /// <inheritdoc/>
    public IReadOnlyList<FunctionSymbol> FunctionsOf(string objectName)
    {
        ArgumentNullException.ThrowIfNull(objectName);
        if (Current.Find(objectName) is not { } mapped)
        {
            return [];
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        var functions = new List<FunctionSymbol>();
        foreach (var symbol in mapped.Image.Symbols.ByValue)
        {
            if (symbol.Type is not (ElfSymbolType.Function or ElfSymbolType.IndirectFunction))
            {
                continue;
            }

            // .symtab spells versioned definitions name@@VERSION; .dynsym and a SPEC do not.
            var at = symbol.Name.IndexOf('@', StringComparison.Ordinal);
            var name = at > 0 ? symbol.Name[..at] : symbol.Name;
            if (seen.Add(name))
            {
                functions.Add(new FunctionSymbol(name, unchecked(mapped.LoadBias + symbol.Value)));
            }
        }

        return functions;
    }

    /// <summary>
    /// The GOT slots gdb reads for an indirect function: every object's GLOB_DAT and JUMP_SLOT relocations naming it
    /// (a JUMP_SLOT only counts once bound, which <see cref="IndirectFunction.IsImplementation"/> checks against the
    /// PLT sections), and the defining object's IRELATIVE relocations whose addend is the resolver (libc's internal
    /// calls; ltrace matches them the same way).
    /// </summary>
    public IndirectFunction? FindIndirectFunction(string name, ulong address)
    {
        ArgumentNullException.ThrowIfNull(name);
        var snapshot = Current;
        var defining = snapshot.FindByAddress(address);
        var resolverValue = defining is null ? 0 : unchecked(address - defining.LoadBias);
        if (defining is null
            || !defining.Image.Symbols.TryLookup(name, out var symbol)
            || symbol.Type != ElfSymbolType.IndirectFunction
            || symbol.Value != resolverValue)
        {
            return null;
        }

        var slots = new List<ulong>();
        var unbound = new List<AddressRange>();
        foreach (var mapped in snapshot.Objects)
        {
            var before = slots.Count;
            foreach (var relocation in mapped.Image.Relocations)
            {
                var names = relocation.Type != ElfConstants.R_X86_64_IRELATIVE && relocation.SymbolName is { } named && BareName(named) == name;
                var internalCall = relocation.Type == ElfConstants.R_X86_64_IRELATIVE && ReferenceEquals(mapped, defining) && unchecked((ulong)relocation.Addend) == resolverValue;
                if (names || internalCall)
                {
                    slots.Add(unchecked(mapped.LoadBias + relocation.Offset));
                }
            }

            if (slots.Count != before)
            {
                unbound.AddRange(mapped.Image.LazyBindingStubs.Select(s => new AddressRange(unchecked(mapped.LoadBias + s.Address), unchecked(mapped.LoadBias + s.Address + s.Size))));
            }
        }

        return new IndirectFunction(name, address, defining.Name, new AddressRange(defining.Start, defining.End), slots, unbound);
    }

    private static string BareName(string name)
    {
        var at = name.IndexOf('@', StringComparison.Ordinal);
        return at > 0 ? name[..at] : name;
    }

    /// <summary>The object mapped at <paramref name="address"/>.</summary>
    public bool TryFindObject(ulong address, [NotNullWhen(true)] out MappedObject? mapped)
    {
        mapped = Current.FindByAddress(address);
        return mapped is not null;
    }

    private Snapshot Current
    {
        get
        {
            var snapshot = Volatile.Read(ref _snapshot);
            if (snapshot is not null)
            {
                return snapshot;
            }

            // First use: read the image now rather than answer from an empty table.
            lock (_refreshLock)
            {
                return _snapshot ??= new Snapshot(_discover());
            }
        }
    }

    /// <summary>One consistent view of the image. Never changed after construction.</summary>
    private sealed class Snapshot
    {
        private readonly Dictionary<string, MappedObject> _byName = new(StringComparer.Ordinal);
        private readonly MappedObject[] _byStart;

        public Snapshot(IReadOnlyList<MappedObject> discovered)
        {
            Executable = discovered.FirstOrDefault(o => o.IsExecutable);
            Objects = Executable is null ? [.. discovered] : [Executable, .. discovered.Where(o => !ReferenceEquals(o, Executable))];
            Loaded = [.. Objects.Select(o => new LoadedObject(o.Path, o.LoadBias))];
            _byStart = [.. Objects.OrderBy(o => o.Start)];

            if (Executable is not null)
            {
                _byName[ExecutableAlias] = Executable;
            }

            // Exact names first so that a stem never shadows a real basename.
            foreach (var mapped in Objects)
            {
                _byName.TryAdd(mapped.Path, mapped);
                _byName.TryAdd(mapped.Name, mapped);
            }

            // The soname next: the vDSO is "[vdso]" in the maps but "linux-vdso.so.1" to the linker.
            foreach (var mapped in Objects)
            {
                if (mapped.Image.SoName is { Length: > 0 } soName)
                {
                    _byName.TryAdd(soName, mapped);
                }
            }

            foreach (var mapped in Objects)
            {
                var dot = mapped.Name.IndexOf('.', StringComparison.Ordinal);
                if (dot > 0)
                {
                    _byName.TryAdd(mapped.Name[..dot], mapped);
                }
            }
        }

        public MappedObject[] Objects { get; }

        public LoadedObject[] Loaded { get; }

        public MappedObject? Executable { get; }

        public MappedObject? Find(string name) => _byName.GetValueOrDefault(name);

        public MappedObject? FindByAddress(ulong address)
        {
            int low = 0, high = _byStart.Length;
            while (low < high)
            {
                var middle = low + ((high - low) / 2);
                if (_byStart[middle].Start <= address)
                {
                    low = middle + 1;
                }
                else
                {
                    high = middle;
                }
            }

            return low > 0 && _byStart[low - 1].Contains(address) ? _byStart[low - 1] : null;
        }
    }
}

/// <summary>A symbol or object asked for by name does not exist in the victim. The message says which.</summary>
public class SymbolLookupException : TracerException
{
    /// <summary>Creates a <see cref="SymbolLookupException"/>: <paramref name="message"/> says what failed and what to do about it.</summary>
    public SymbolLookupException(string message) : base(message) { }

    /// <summary>Creates a <see cref="SymbolLookupException"/>: <paramref name="message"/> says what failed and what to do about it; <paramref name="innerException"/> is the failure behind it.</summary>
    public SymbolLookupException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates a <see cref="SymbolLookupException"/> with a generic message; prefer one that says what failed.</summary>
    public SymbolLookupException() : this("symbol not found") { }
}
