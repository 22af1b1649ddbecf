using ProcHex.Ports;

namespace ProcHex;

/// <summary>
/// A victim held by a <see cref="ProcHexSession"/>. Grabbing a pid that is already held returns the same
/// handle with one more reference (S5). Once released for the last time every call on it fails (S23).
/// </summary>
public sealed class ProcessHandle
{
    internal ProcessHandle(Victims.Victim victim) => Victim = victim;

    internal Victims.Victim Victim { get; }

    public int Pid => Victim.Pid;

    public bool IsReadOnly => Victim.IsReadOnly;

    /// <summary>Where the victim is in its lifecycle now.</summary>
    public VictimState State => Victim.State;

    /// <summary>How it ended, once <see cref="State"/> is Undead.</summary>
    public ExitStatus? Exit => Victim.Exit;

    /// <summary>The loaded objects of the victim's current image.</summary>
    public IReadOnlyList<LoadedObject> Objects => Victim.Checked().Process.Symbols.Objects;

    /// <summary>Reads victim memory without stopping it (what ustack needs).</summary>
    public int ReadMemory(ulong address, Span<byte> destination) => Victim.Checked().Process.ReadMemory(address, destination);

    /// <summary>Looks up <c>object`symbol</c>, or a bare <c>symbol</c> in every object (executable first).</summary>
    /// <exception cref="SymbolNotFoundException">No such object or symbol.</exception>
    public ulong LookupSymbol(string objectSymbol) => Victim.Checked().LookupSymbol(objectSymbol);

    /// <summary>Names an address as <c>object`symbol+0xoff</c>, or null when no object maps it.</summary>
    public SymbolLocation? ResolveAddress(ulong address) =>
        Victim.Checked().Process.Symbols.TryResolve(address, out var location) ? location : null;

    public override string ToString() => $"pid {Pid} ({State})";
}
