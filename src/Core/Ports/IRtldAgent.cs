namespace ProcHex.Ports;

/// <summary>
/// The dynamic linker's debugging interface for one image (rtld_db on illumos, r_debug elsewhere).
/// Several events may share one address; the core plants one breakpoint per distinct address and
/// asks <see cref="ReadEventMessage"/> which event it was.
/// </summary>
public interface IRtldAgent
{
    /// <summary>Turns event reporting on. Returns false when the linker cannot report events.</summary>
    bool EnableEvents();

    /// <summary>The breakpoint address for <paramref name="kind"/>, or false when that event is not reported by a breakpoint.</summary>
    bool TryGetEventAddress(RtldEventKind kind, out ulong address);

    /// <summary>Which event the victim is stopped at, and the library list's state.</summary>
    /// <exception cref="TracerException">The linker's state could not be read.</exception>
    RtldEventMessage ReadEventMessage();
}

public enum RtldEventKind
{
    /// <summary>The initial libraries are mapped, before their initializers.</summary>
    Preinit,

    /// <summary>Initializers have run; the executable is about to enter its entry point.</summary>
    Postinit,

    /// <summary>A later change of the library list (dlopen, dlclose).</summary>
    DlActivity,
}

public enum RtldState
{
    Consistent,
    Adding,
    Deleting,
}

public readonly record struct RtldEventMessage(RtldEventKind Kind, RtldState State);
