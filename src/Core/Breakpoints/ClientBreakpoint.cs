using ProcHex.Victims;

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

    /// <summary>The victim it is planted in.</summary>
    public ProcessHandle Handle { get; }

    /// <summary>The address of the trap.</summary>
    public ulong Address { get; }

    internal BreakpointHandler Handler { get; }

    /// <summary>Hits handled by this breakpoint's handler.</summary>
    public long Hits { get; internal set; }

    /// <summary>False once removed, or once an exec replaced the image it was planted in.</summary>
    public bool IsPlanted { get; internal set; } = true;

    /// <summary>True while the trap is actually in the victim's text (false while idle or when it could not be written, S15).</summary>
    /// <remarks>
    /// Read under the victim lock, which guards the breakpoint set (S21): from another flow it waits while the
    /// control loop or a client holds the lock, and so sees a removal or an enable whole, never half done. A flow
    /// that holds the lock already (a breakpoint handler, a callback, a client between Lock and Unlock) reads at
    /// once. Do not read it from a single-threaded synchronization context that the lock's holder needs to finish.
    /// </remarks>
    public bool IsActive
    {
        get
        {
            var victim = Handle.Victim;
            using var _ = victim.Lock.Enter(VictimLock.CurrentFlow);
            return IsPlanted && victim.Breakpoints.IsActive(Address);
        }
    }
}
