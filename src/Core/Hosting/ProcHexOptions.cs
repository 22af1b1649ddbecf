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
}
