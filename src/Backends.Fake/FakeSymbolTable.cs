using ProcHex.Ports;

namespace ProcHex.Backends.Fake;

/// <summary>
/// A snapshot of a victim's mappings, like libproc's: it only changes on <see cref="Refresh"/> or <see cref="Reset"/>,
/// so a core that forgets to refresh after dlopen or exec sees stale symbols.
/// </summary>
internal sealed class FakeSymbolTable : ISymbolTable
{
    private readonly FakeKernel _kernel;
    private readonly FakeVictim _victim;
    private IReadOnlyList<FakeMapping> _mappings;

    public FakeSymbolTable(FakeKernel kernel, FakeVictim victim, IReadOnlyList<FakeMapping> mappings)
    {
        _kernel = kernel;
        _victim = victim;
        _mappings = mappings;
    }

    public IReadOnlyList<LoadedObject> Objects => [.. _mappings.Select(m => new LoadedObject(m.Path, m.Bias))];

    public void Refresh() => _mappings = _kernel.ReadMappings(_victim, FakeOperation.SymbolsRefresh);

    public void Reset() => _mappings = _kernel.ReadMappings(_victim, FakeOperation.SymbolsReset);

    public bool TryLookup(string? objectName, string symbol, out ulong address)
    {
        ArgumentNullException.ThrowIfNull(symbol);
        var mappings = _mappings;
        for (var i = 0; i < mappings.Count; i++)
        {
            if (Matches(mappings[i].Path, objectName, i == 0) && mappings[i].File.Symbols.TryGetValue(symbol, out var value))
            {
                address = value + mappings[i].Bias;
                return true;
            }
        }

        address = 0;
        return false;
    }

    public bool TryResolve(ulong address, out SymbolLocation location)
    {
        foreach (var mapping in _mappings)
        {
            if (!mapping.Contains(address))
            {
                continue;
            }

            var value = address - mapping.Bias;
            var nearest = mapping.File.Symbols.Where(s => s.Value <= value).OrderByDescending(s => s.Value).ThenBy(s => s.Key, StringComparer.Ordinal).FirstOrDefault();
            var name = System.IO.Path.GetFileName(mapping.Path);
            location = nearest.Key is null
                ? new SymbolLocation(name, null, value)
                : new SymbolLocation(name, nearest.Key, value - nearest.Value);
            return true;
        }

        location = default;
        return false;
    }

    public IReadOnlyList<FunctionSymbol> FunctionsOf(string objectName)
    {
        var mappings = _mappings;
        for (var i = 0; i < mappings.Count; i++)
        {
            if (objectName is not null && Matches(mappings[i].Path, objectName, i == 0))
            {
                var bias = mappings[i].Bias;
                return [.. mappings[i].File.Symbols.OrderBy(s => s.Value).Select(s => new FunctionSymbol(s.Key, s.Value + bias))];
            }
        }

        return [];
    }

    /// <summary>Every fake function is <c>0x40</c> bytes long (the layout's spacing); data symbols have no size here.</summary>
    public int? FunctionSize(ulong address)
    {
        foreach (var mapping in _mappings)
        {
            if (mapping.Contains(address) && mapping.File.FunctionSize(address - mapping.Bias) is { } size)
            {
                return size;
            }
        }

        return null;
    }

    /// <summary>"a.out" names the executable; otherwise a full path or a basename; null matches everything.</summary>
    public static bool Matches(string path, string? objectName, bool isExecutable) =>
        objectName is null
        || (objectName == "a.out" && isExecutable)
        || objectName == path
        || objectName == System.IO.Path.GetFileName(path);
}
