namespace ProcHex;

/// <summary>A breakpoint a client planted (what a pid provider needs): an address and a handler.</summary>
public sealed class ClientBreakpoint
{
    internal ClientBreakpoint(ProcessHandle handle, ulong address, BreakpointHandler handler)
    {
        Handle = handle;
        Address = address;
        Handler = handler;
    }

    public ProcessHandle Handle { get; }

    public ulong Address { get; }

    internal BreakpointHandler Handler { get; }

    /// <summary>Hits handled by this breakpoint's handler.</summary>
    public long Hits { get; internal set; }

    /// <summary>False once removed, or once an exec replaced the image it was planted in.</summary>
    public bool IsPlanted { get; internal set; } = true;

    /// <summary>True while the trap is actually in the victim's text (false while idle or when it could not be written, S15).</summary>
    public bool IsActive => IsPlanted && Handle.Victim.Breakpoints.IsActive(Address);
}
