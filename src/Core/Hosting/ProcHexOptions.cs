namespace ProcHex;

/// <summary>Tunables of a <see cref="ProcHexSession"/>, bound through Microsoft.Extensions.Options.</summary>
public sealed class ProcHexOptions
{
    /// <summary>How many unreferenced read-only handles stay cached (S7). DTrace's default is 8.</summary>
    public int LruLimit { get; set; } = 8;

    /// <summary>Where a created victim waits unless the call says otherwise (S1).</summary>
    public Rendezvous DefaultRendezvous { get; set; } = Rendezvous.Main;

    /// <summary>Clock for notification wait timeouts; the simulation replaces it.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>
    /// Demangles C++ names so that pending breakpoints match <c>ns::Class::method</c> and <c>ns::f(int)</c>; null
    /// (the default) matches raw names only. ProcHex.Elf's <c>CxxFiltDemangler</c> drives binutils' c++filt.
    /// </summary>
    public Ports.ISymbolDemangler? Demangler { get; set; }
}
