using ProcHex.Ports;

namespace ProcHex.Breakpoints;

/// <summary>What the control loop itself needs a breakpoint for.</summary>
[Flags]
internal enum SiteRoles
{
    None = 0,

    /// <summary><c>a.out`main</c> (S18).</summary>
    Main = 1,

    /// <summary>A dynamic-linker event address (S17).</summary>
    Rtld = 2,

    /// <summary><c>__libc_start_main</c>, whose first argument is main, in an executable without a main symbol (S18).</summary>
    LibcStartMain = 4,
}

/// <summary>
/// One address with a trap in it. Internal roles and any number of client breakpoints share the site, so the
/// text is patched once however many parties want the address.
/// </summary>
internal sealed class BreakpointSite
{
    private ClientBreakpoint[] _clients = [];

    public BreakpointSite(ulong address) => Address = address;

    public ulong Address { get; }

    public SiteRoles Roles { get; set; }

    /// <summary>True while the trap is in the text; <see cref="Patch"/> then holds what it replaced.</summary>
    public bool Active { get; set; }

    public BreakpointPatch Patch { get; set; }

    public long Hits { get; set; }

    /// <summary>A copy-on-write array: handlers may add or remove breakpoints while the site is being hit.</summary>
    public ReadOnlySpan<ClientBreakpoint> Clients => _clients;

    public bool IsUnused => Roles == SiteRoles.None && _clients.Length == 0;

    public void AddClient(ClientBreakpoint breakpoint) => _clients = [.. _clients, breakpoint];

    public void RemoveClient(ClientBreakpoint breakpoint) => _clients = Array.FindAll(_clients, c => c != breakpoint);
}
