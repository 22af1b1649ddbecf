namespace ProcHex.Elf;

/// <summary>
/// The defined symbols of one object (its .symtab and .dynsym merged), indexed both ways: by name in a dictionary
/// and by value in a sorted array. Immutable once built, so any number of threads may look things up; lookups
/// allocate nothing.
/// </summary>
public sealed class ElfSymbolTable
{
    /// <summary>How far back from the nearest symbol we look for a sized symbol that encloses the value (labels inside functions).</summary>
    private const int EnclosingSearchDepth = 8;

    private readonly Dictionary<string, ElfSymbol> _byName;
    private readonly ElfSymbol[] _byValue;

    /// <summary>A table without symbols (a stripped object, or one that could not be read).</summary>
    public static ElfSymbolTable Empty { get; } = new([]);

    internal ElfSymbolTable(IEnumerable<ElfSymbol> symbols)
    {
        _byName = new Dictionary<string, ElfSymbol>(StringComparer.Ordinal);
        var ranks = new Dictionary<string, int>(StringComparer.Ordinal);
        var byValue = new List<ElfSymbol>();
        foreach (var symbol in symbols)
        {
            if (!IsAddressable(symbol))
            {
                continue;
            }

            byValue.Add(symbol);
            Index(ranks, symbol.Name, symbol, Rank(symbol));

            // .symtab names versioned definitions "name@@VERSION" (default) and "name@VERSION" (compat); a tracer
            // asks for "name". The default version wins over compat ones; versions are otherwise ignored.
            var at = symbol.Name.IndexOf('@', StringComparison.Ordinal);
            if (at > 0)
            {
                var isDefault = at + 1 < symbol.Name.Length && symbol.Name[at + 1] == '@';
                Index(ranks, symbol.Name[..at], symbol, Rank(symbol) - (isDefault ? 1 : 2));
            }
        }

        // Equal values sort the preferred symbol last, so the upper bound lands on it.
        byValue.Sort(static (a, b) => a.Value != b.Value ? a.Value.CompareTo(b.Value) : Rank(a).CompareTo(Rank(b)));
        _byValue = [.. byValue];
    }

    /// <summary>The number of distinct names.</summary>
    public int Count => _byName.Count;

    /// <summary>All symbols ordered by value.</summary>
    public ReadOnlySpan<ElfSymbol> ByValue => _byValue;

    /// <summary>The symbol named <paramref name="name"/>, preferring a global definition; false when none.</summary>
    /// <param name="name">The raw (mangled) name.</param>
    /// <param name="symbol">The symbol found.</param>
    public bool TryLookup(string name, out ElfSymbol symbol) => _byName.TryGetValue(name, out symbol);

    /// <summary>
    /// Finds the symbol that <paramref name="value"/> (an unrelocated address) falls in: a sized symbol that covers
    /// it (looking a few symbols back, past labels inside the function), else the nearest unsized symbol below it.
    /// </summary>
    public bool TryResolve(ulong value, out ElfSymbol symbol, out ulong offset)
    {
        var upper = UpperBound(value);
        for (var i = upper - 1; i >= 0 && i >= upper - EnclosingSearchDepth; i--)
        {
            var candidate = _byValue[i];
            if (candidate.Size != 0 && value - candidate.Value < candidate.Size)
            {
                symbol = candidate;
                offset = value - candidate.Value;
                return true;
            }
        }

        // An unsized symbol (an assembly entry point, _start) covers up to the next symbol, unless it is a
        // label inside a sized function that has already ended: then the value is in a gap.
        if (upper > 0 && _byValue[upper - 1].Size == 0 && !IsInsideSizedSymbol(upper - 1))
        {
            symbol = _byValue[upper - 1];
            offset = value - symbol.Value;
            return true;
        }

        symbol = default;
        offset = 0;
        return false;
    }

    private bool IsInsideSizedSymbol(int index)
    {
        var label = _byValue[index].Value;
        for (var i = index - 1; i >= 0 && i >= index - EnclosingSearchDepth; i--)
        {
            if (_byValue[i].Size != 0 && label - _byValue[i].Value < _byValue[i].Size)
            {
                return true;
            }
        }

        return false;
    }

    private void Index(Dictionary<string, int> ranks, string name, ElfSymbol symbol, int rank)
    {
        if (name.Length == 0)
        {
            return;
        }

        if (ranks.TryGetValue(name, out var existing) && existing >= rank)
        {
            return;
        }

        ranks[name] = rank;
        _byName[name] = symbol;
    }

    private int UpperBound(ulong value)
    {
        int low = 0, high = _byValue.Length;
        while (low < high)
        {
            var middle = low + ((high - low) / 2);
            if (_byValue[middle].Value <= value)
            {
                low = middle + 1;
            }
            else
            {
                high = middle;
            }
        }

        return low;
    }

    /// <summary>Symbols that name a place in the object: not undefined, absolute, TLS offsets, sections or files.</summary>
    private static bool IsAddressable(ElfSymbol symbol) =>
        symbol.Name.Length != 0
        && symbol.SectionIndex != ElfConstants.SHN_UNDEF
        && (symbol.SectionIndex < ElfConstants.SHN_LORESERVE || symbol.SectionIndex == ElfConstants.SHN_XINDEX)
        && symbol.Type is ElfSymbolType.NoType or ElfSymbolType.DataObject or ElfSymbolType.Function or ElfSymbolType.IndirectFunction;

    /// <summary>Globals beat weak symbols beat locals; code and data beat untyped labels; a default version beats a hidden one.</summary>
    private static int Rank(ElfSymbol symbol)
    {
        var binding = symbol.Binding switch
        {
            ElfSymbolBinding.Global or ElfSymbolBinding.Unique => 30,
            ElfSymbolBinding.Weak => 20,
            _ => 10,
        };
        var type = symbol.Type == ElfSymbolType.NoType ? 0 : 5;
        return binding + type + (symbol.Size != 0 ? 3 : 0) - (symbol.IsHiddenVersion ? 2 : 0);
    }
}
