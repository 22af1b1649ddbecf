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

        if (HasWhiteSpaceOutsideBrackets(text))
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

    /// <summary>
    /// True when the symbol is a pattern (<c>*</c>, <c>?</c>, or a character class <c>[abc]</c>, <c>[a-z]</c>,
    /// <c>[!abc]</c>; a <c>[</c> that opens no class, as in <c>operator[]</c>, is itself): counted per matched function.
    /// </summary>
    public bool IsWildcard => Symbol.AsSpan().IndexOfAny('*', '?') >= 0 || HasClass(Symbol);

    private static bool HasClass(string text)
    {
        for (var open = text.IndexOf('[', StringComparison.Ordinal); open >= 0; open = text.IndexOf('[', open + 1))
        {
            var i = open + 1;
            if (i < text.Length && text[i] is '!' or '^')
            {
                i++;
            }

            if (i < text.Length && text[i] == ']')
            {
                if (i == open + 1)
                {
                    continue;
                }

                i++;
            }

            if (text.IndexOf(']', i) >= 0)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>True when the symbol is written as C++ (<c>ns::f</c>, <c>f(int)</c>): it needs the demangler.</summary>
    public bool IsCxxName => Symbol.Contains("::", StringComparison.Ordinal) || Symbol.Contains('(', StringComparison.Ordinal);

    /// <summary>
    /// <c>ns::f(int, char) const</c> and <c>ns::Box&lt;std::pair&lt;int, int&gt; &gt;::get</c> are one SPEC (white space
    /// inside brackets or after a parameter list); <c>a b</c> is not.
    /// </summary>
    private static bool HasWhiteSpaceOutsideBrackets(string text)
    {
        var depth = 0;
        var parameters = false;
        foreach (var c in text)
        {
            depth += c switch { '(' or '<' => 1, ')' or '>' when depth > 0 => -1, _ => 0 };
            parameters |= c == '(';
            if (char.IsWhiteSpace(c) && depth == 0 && !parameters)
            {
                return true;
            }
        }

        return false;
    }

    public override string ToString() => Text;
}
