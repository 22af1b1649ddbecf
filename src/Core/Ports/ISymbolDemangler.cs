namespace ProcHex.Ports;

/// <summary>
/// Turns raw symbol names (C++'s Itanium-ABI mangled names) into the names people write. Used to match SPECs such
/// as <c>ns::Class::method</c> and <c>ns::f(int)</c>; a session without one matches raw names only.
/// </summary>
/// <remarks>
/// Called on control loops (with a victim locked) and by clients: an implementation must be thread-safe and must
/// not start processes on the calling thread (a ptrace owner thread must have no children but its victims).
/// </remarks>
public interface ISymbolDemangler
{
    /// <summary>For each of <paramref name="names"/>, in order, its demangled forms, or null when it is not a mangled name.</summary>
    IReadOnlyList<DemangledName?> Demangle(IReadOnlyList<string> names);
}

/// <summary>
/// One demangled name. <paramref name="Full"/> is what c++filt prints (<c>int ns::twice&lt;int&gt;(int)</c>,
/// <c>ns::Widget::poke(int) const</c>); <paramref name="Name"/> is the qualified name alone, without return type
/// and parameters (<c>ns::twice&lt;int&gt;</c>, what <c>c++filt -p</c> prints).
/// </summary>
public sealed record DemangledName(string Full, string Name)
{
    /// <summary>
    /// The name with its parameters and qualifiers, without the return type a template function's mangling carries
    /// (<c>ns::twice&lt;int&gt;(int)</c>); <see cref="Full"/> when the name cannot be found in it.
    /// </summary>
    public string Signature
    {
        get
        {
            var at = Full.LastIndexOf(Name + "(", StringComparison.Ordinal);
            return at < 0 ? Full : Full[at..];
        }
    }

    /// <summary>The signature without what follows the parameter list (<c> const</c>, <c> &amp;&amp;</c>, <c> [clone .cold]</c>).</summary>
    public string Call
    {
        get
        {
            var signature = Signature;
            var open = signature.IndexOf('(', Name.Length);
            if (open != Name.Length)
            {
                return signature;
            }

            var depth = 0;
            for (var i = open; i < signature.Length; i++)
            {
                depth += signature[i] switch { '(' => 1, ')' => -1, _ => 0 };
                if (depth == 0)
                {
                    return signature[..(i + 1)];
                }
            }

            return signature;
        }
    }
}
