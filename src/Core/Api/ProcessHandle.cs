using ProcHex.Ports;

namespace ProcHex;

/// <summary>
/// A victim held by a <see cref="ProcHexSession"/>. Grabbing a pid that is already held returns the same
/// handle with one more reference (S5). Once released for the last time every call on it fails (S23). A handle
/// whose process ended and whose pid now names another process is stale: its reads fail with
/// <see cref="StaleHandleException"/> instead of reading the newcomer (issue 17 item 3).
/// </summary>
public sealed class ProcessHandle
{
    internal ProcessHandle(Victims.Victim victim) => Victim = victim;

    internal Victims.Victim Victim { get; }

    /// <summary>The victim's process id.</summary>
    public int Pid => Victim.Pid;

    /// <summary>True for a read-only grab (S4): memory and symbols can be read, nothing is stopped or written.</summary>
    public bool IsReadOnly => Victim.IsReadOnly;

    /// <summary>
    /// Why this handle only reads, when it was asked for with <see cref="GrabMode.ControlOrReadOnly"/> and the OS
    /// refused control: the reason the grab for control failed with ("already traced by pid 812"). Null for every
    /// other handle (issue 22 item 5).
    /// </summary>
    public string? ReadOnlyReason => Victim.ReadOnlyReason;

    /// <summary>The refusal behind <see cref="ReadOnlyReason"/>, with its facts (the tracer's pid, ptrace_scope...).</summary>
    public GrabRefusal? ReadOnlyRefusal => Victim.ReadOnlyRefusal;

    /// <summary>
    /// The pid the process has in its own pid namespace (a container's init is 1 there), where it differs from
    /// <see cref="Pid"/>, the pid in ours; null when it lives in our pid namespace or the backend cannot tell (issue 22 item 4).
    /// </summary>
    public int? NamespacePid => Victim.Process.NamespacePid;

    /// <summary>
    /// When the process started, in the OS's clock (Linux: clock ticks since boot, /proc/PID/stat field 22): with
    /// <see cref="Pid"/>, the identity of the process this handle holds. Null when the backend cannot tell.
    /// </summary>
    public ulong? StartTime => Victim.Process.StartTime;

    /// <summary>Where the victim is in its lifecycle now.</summary>
    public VictimState State => Victim.State;

    /// <summary>
    /// Where a created victim waited for its first Continue: the rendezvous asked for, or the one it stopped at
    /// instead when that one cannot be reached. A static executable has no preinit or postinit (it stops at main);
    /// when main cannot be found (no main symbol, no <c>__libc_start_main</c>, entry code not recognised) it stops
    /// at postinit, or at create for a static executable. Null for a grabbed victim.
    /// </summary>
    public Rendezvous? Rendezvous => Victim.RendezvousReached;

    /// <summary>
    /// The victim's standard input when it was created with <see cref="StdioTarget.Pipe"/>, else null. Owned by the
    /// handle: closed when the victim is let go. Dispose it to send end of file.
    /// </summary>
    public Stream? StandardInput => Victim.Process.Streams?.Input;

    /// <summary>
    /// The victim's standard output when it was created with <see cref="StdioTarget.Pipe"/>, else null; end of file once
    /// the victim (and every process it passed the descriptor to) has closed it. Owned by the handle: closed when the
    /// victim is let go. A victim that fills the pipe while nobody reads blocks in its write; the tracer does not
    /// (see <see cref="StdioTarget"/>).
    /// </summary>
    public Stream? StandardOutput => Victim.Process.Streams?.Output;

    /// <summary>The victim's standard error when it was created with <see cref="StdioTarget.Pipe"/>, else null; as <see cref="StandardOutput"/>.</summary>
    public Stream? StandardError => Victim.Process.Streams?.Error;

    /// <summary>How it ended, once <see cref="State"/> is Undead.</summary>
    public ExitStatus? Exit => Victim.Exit;

    /// <summary>The loaded objects of the victim's current image.</summary>
    /// <exception cref="ProcHexException">The OS would not show the victim's mappings (the message says why).</exception>
    public IReadOnlyList<LoadedObject> Objects
    {
        get
        {
            var process = Victim.CheckedSameProcess().Process;
            try
            {
                return process.Symbols.Objects;
            }
            catch (TracerException ex)
            {
                throw ProcHexException.FromBackend(ex);
            }
        }
    }

    /// <summary>The victim's threads now, each with its program counter where the OS can tell it; nothing is stopped.</summary>
    /// <exception cref="ProcHexException">The OS would not show the threads (the message says why).</exception>
    public IReadOnlyList<ThreadSnapshot> Threads
    {
        get
        {
            var process = Victim.CheckedSameProcess().Process;
            try
            {
                return process.ReadThreads();
            }
            catch (TracerException ex)
            {
                throw ProcHexException.FromBackend(ex);
            }
        }
    }

    /// <summary>Reads victim memory without stopping it (what ustack needs).</summary>
    /// <exception cref="ProcHexException">The OS refused the read (the message says why).</exception>
    public int ReadMemory(ulong address, Span<byte> destination)
    {
        var process = Victim.CheckedSameProcess().Process;
        try
        {
            return process.ReadMemory(address, destination);
        }
        catch (TracerException ex)
        {
            throw ProcHexException.FromBackend(ex);
        }
    }

    /// <summary>Looks up <c>object`symbol</c>, or a bare <c>symbol</c> in every object (executable first).</summary>
    /// <exception cref="SymbolNotFoundException">No such object or symbol.</exception>
    /// <exception cref="ProcHexException">The OS would not show the victim's objects (the message says why).</exception>
    public ulong LookupSymbol(string objectSymbol)
    {
        return Victim.Checked().LookupSymbol(objectSymbol);
    }

    /// <summary>Names an address as <c>object`symbol+0xoff</c>, or null when no object maps it.</summary>
    /// <exception cref="ProcHexException">The OS would not show the victim's objects (the message says why).</exception>
    public SymbolLocation? ResolveAddress(ulong address)
    {
        var symbols = Victim.CheckedSameProcess().Process.Symbols;
        try
        {
            return symbols.TryResolve(address, out var location) ? location : null;
        }
        catch (TracerException ex)
        {
            throw ProcHexException.FromBackend(ex);
        }
    }

    /// <inheritdoc/>
    public override string ToString() => $"pid {Pid} ({State})";
}
