using ProcHex.Ports;

namespace ProcHex.Breakpoints;

/// <summary>
/// The symbol part of a SPEC. A plain name (<c>malloc</c>, <c>_ZN2ns1fEi</c>) is looked up exactly. Anything else
/// is matched against every function of an object, raw and demangled: <c>ns::Widget::poke</c> (every overload,
/// and every instantiation when no template arguments are given), <c>ns::f(int)</c> (one overload; qualifiers
/// such as <c>const</c> may be given or left out), and <c>*</c>/<c>?</c> wildcards and character classes
/// (<c>[abc]</c>, <c>[a-z]</c>, <c>[!abc]</c> or <c>[^abc]</c>) over raw and demangled names. A <c>[</c> that opens no
/// class (<c>operator[]</c>: nothing before the <c>]</c>) is itself.
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
        IsWildcard = symbol.AsSpan().IndexOfAny('*', '?') >= 0 || HasClass(symbol);
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

    /// <summary>True when some <c>[</c> opens a character class: a set of at least one character, then <c>]</c>.</summary>
    private static bool HasClass(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '[' && ClassEnd(text, i) > 0)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// The index just past the <c>]</c> that closes the class opened at <paramref name="open"/>, or -1 when that
    /// <c>[</c> opens none. A <c>]</c> first in the set (after <c>!</c> or <c>^</c>) is a member, as in a shell glob.
    /// </summary>
    private static int ClassEnd(string pattern, int open)
    {
        var i = open + 1;
        if (i < pattern.Length && pattern[i] is '!' or '^')
        {
            i++;
        }

        if (i < pattern.Length && pattern[i] == ']')
        {
            if (i == open + 1)
            {
                return -1; // "[]": operator[], not an empty class
            }

            i++;
        }

        for (; i < pattern.Length; i++)
        {
            if (pattern[i] == ']')
            {
                return i + 1;
            }
        }

        return -1;
    }

    /// <summary>Whether <paramref name="c"/> is in the class <c>pattern[open..end)</c> (ranges <c>a-z</c>; <c>!</c> or <c>^</c> negates).</summary>
    private static bool InClass(string pattern, int open, int end, char c)
    {
        var i = open + 1;
        var negated = pattern[i] is '!' or '^';
        if (negated)
        {
            i++;
        }

        var found = false;
        var first = true;
        for (; i < end - 1; i++, first = false)
        {
            var low = pattern[i];
            if (low == ']' && !first)
            {
                break;
            }

            if (i + 2 < end - 1 && pattern[i + 1] == '-')
            {
                found |= c >= low && c <= pattern[i + 2];
                i += 2;
            }
            else
            {
                found |= c == low;
            }
        }

        return found != negated;
    }

    /// <summary>
    /// <c>*</c> is any run of characters, <c>?</c> one character, <c>[...]</c> one character of a class; everything
    /// else is itself.
    /// </summary>
    private static bool Glob(string pattern, string text)
    {
        int p = 0, t = 0, star = -1, mark = 0;
        while (t < text.Length)
        {
            var end = p < pattern.Length && pattern[p] == '[' ? ClassEnd(pattern, p) : -1;
            if (end > 0 && InClass(pattern, p, end, text[t]))
            {
                p = end;
                t++;
            }
            else if (end < 0 && p < pattern.Length && (pattern[p] == '?' || pattern[p] == text[t]))
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
