using ProcHex.Ports;

namespace ProcHex.Breakpoints;

/// <summary>
/// The symbol part of a SPEC. A plain name (<c>malloc</c>, <c>_ZN2ns1fEi</c>) is looked up exactly. Anything else
/// is matched against every function of an object, raw and demangled: <c>ns::Widget::poke</c> (every overload,
/// and every instantiation when no template arguments are given), <c>ns::f(int)</c> (one overload; qualifiers
/// such as <c>const</c> may be given or left out), and <c>*</c>/<c>?</c> wildcards over raw and demangled names.
/// White space is ignored (<c>ns::f(int, int)</c> is <c>ns::f(int,int)</c>; c++filt's <c>&gt; &gt;</c> is <c>&gt;&gt;</c>).
/// </summary>
internal sealed class SymbolPattern
{
    private static readonly System.Buffers.SearchValues<char> CxxSyntax = System.Buffers.SearchValues.Create(":()<>~, [&");

    private readonly string _normalized;
    private readonly bool _hasParameters;
    private readonly bool _hasTemplateArguments;

    public SymbolPattern(string symbol)
    {
        Text = symbol;
        _normalized = Normalize(symbol);
        IsWildcard = symbol.AsSpan().IndexOfAny('*', '?') >= 0;
        _hasParameters = symbol.Contains('(', StringComparison.Ordinal);
        _hasTemplateArguments = symbol.Contains('<', StringComparison.Ordinal);
        IsPlain = !IsWildcard && symbol.AsSpan().IndexOfAny(CxxSyntax) < 0;
    }

    public string Text { get; }

    /// <summary>A raw name: one exact lookup answers it.</summary>
    public bool IsPlain { get; }

    public bool IsWildcard { get; }

    /// <summary>Whether a raw name is worth demangling for this pattern (C++ names, but not clones: .cold parts are not entries).</summary>
    public static bool IsDemanglable(string raw) => raw.StartsWith("_Z", StringComparison.Ordinal) && !raw.Contains('.', StringComparison.Ordinal);

    public bool Matches(string raw, DemangledName? demangled)
    {
        if (IsWildcard)
        {
            return Glob(_normalized, raw)
                || (demangled is not null && (Glob(_normalized, Normalize(demangled.Name)) || Glob(_normalized, Normalize(demangled.Call))));
        }

        if (raw == Text)
        {
            return true;
        }

        if (demangled is null)
        {
            return false;
        }

        if (_hasParameters)
        {
            return _normalized == Normalize(demangled.Call)
                || _normalized == Normalize(demangled.Signature)
                || (!_hasTemplateArguments && _normalized == Normalize(WithoutTemplateArguments(demangled.Call)));
        }

        var name = Normalize(demangled.Name);
        return _normalized == name || (!_hasTemplateArguments && _normalized == Normalize(WithoutTemplateArguments(demangled.Name)));
    }

    private static string Normalize(string text) => string.Concat(text.Where(c => !char.IsWhiteSpace(c)));

    /// <summary><c>ns::Box&lt;int&gt;::get</c> as <c>ns::Box::get</c>, as gdb matches a name given without template arguments.</summary>
    private static string WithoutTemplateArguments(string name)
    {
        if (name.Contains("operator", StringComparison.Ordinal))
        {
            // operator< and operator<< are not template brackets; such names match only as written.
            return name;
        }

        var result = new System.Text.StringBuilder(name.Length);
        var depth = 0;
        foreach (var c in name)
        {
            if (c == '<')
            {
                depth++;
            }
            else if (c == '>' && depth > 0)
            {
                depth--;
            }
            else if (depth == 0)
            {
                result.Append(c);
            }
        }

        return result.ToString();
    }

    /// <summary><c>*</c> is any run of characters, <c>?</c> one character; everything else is itself.</summary>
    private static bool Glob(string pattern, string text)
    {
        int p = 0, t = 0, star = -1, mark = 0;
        while (t < text.Length)
        {
            if (p < pattern.Length && (pattern[p] == '?' || pattern[p] == text[t]))
            {
                p++;
                t++;
            }
            else if (p < pattern.Length && pattern[p] == '*')
            {
                star = p++;
                mark = t;
            }
            else if (star >= 0)
            {
                p = star + 1;
                t = ++mark;
            }
            else
            {
                return false;
            }
        }

        while (p < pattern.Length && pattern[p] == '*')
        {
            p++;
        }

        return p == pattern.Length;
    }
}
