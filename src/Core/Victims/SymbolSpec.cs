using ProcHex.Ports;

namespace ProcHex.Victims;

/// <summary>Parses <c>object`symbol</c> (or a bare <c>symbol</c>) and words lookup failures.</summary>
internal static class SymbolSpec
{
    public static (string? ObjectName, string Symbol) Parse(string spec)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(spec);
        var tick = spec.LastIndexOf('`');
        if (tick < 0)
        {
            return (null, spec);
        }

        var objectName = spec[..tick];
        var symbol = spec[(tick + 1)..];
        if (objectName.Length == 0 || symbol.Length == 0)
        {
            throw new ArgumentException($"'{spec}' is not object`symbol or symbol", nameof(spec));
        }

        return (objectName, symbol);
    }

    public static string Describe(int pid, string? objectName, string symbol, ISymbolTable symbols)
    {
        if (objectName is null)
        {
            return $"pid {pid}: no object defines symbol '{symbol}'";
        }

        var known = objectName == "a.out" || symbols.Objects.Any(o => o.Name == objectName || o.Path == objectName);
        return known
            ? $"pid {pid}: {objectName} has no symbol '{symbol}'"
            : $"pid {pid}: no object named '{objectName}' is loaded";
    }
}
