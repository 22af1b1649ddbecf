namespace ProcHex.Cli;

/// <summary>
/// One <c>--count SPEC</c>: <c>object`symbol</c> (the object named by basename, full path, or <c>a.out</c> for the
/// executable) or a bare <c>symbol</c> (the executable first, then the loaded libraries).
/// </summary>
internal sealed record CountSpec(string Text, string? ObjectName, string Symbol)
{
    public bool IsBare => ObjectName is null;

    /// <summary>Parses a SPEC; null with a reason when it is malformed (a usage error).</summary>
    public static CountSpec? TryParse(string text, out string? error)
    {
        error = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "a SPEC must not be empty";
            return null;
        }

        if (text.Any(char.IsWhiteSpace))
        {
            error = $"SPEC '{text}' contains white space";
            return null;
        }

        var tick = text.LastIndexOf('`');
        if (tick < 0)
        {
            return new CountSpec(text, null, text);
        }

        var objectName = text[..tick];
        var symbol = text[(tick + 1)..];
        if (objectName.Length == 0 || symbol.Length == 0 || objectName.Contains('`', StringComparison.Ordinal))
        {
            error = $"SPEC '{text}' is neither object`symbol nor symbol";
            return null;
        }

        return new CountSpec(text, objectName, symbol);
    }

    /// <summary>True when <paramref name="loaded"/> is the object this SPEC names.</summary>
    public bool Names(LoadedObject loaded, bool isExecutable) =>
        ObjectName is { } name &&
        ((name == "a.out" && isExecutable) || loaded.Name == name || loaded.Path == name);

    public override string ToString() => Text;
}
