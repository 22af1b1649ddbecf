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

/// <summary>The dynamic linker events a victim's library list is followed by (S17).</summary>
public enum RtldEventKind
{
    /// <summary>The initial libraries are mapped, before their initializers.</summary>
    Preinit,

    /// <summary>Initializers have run; the executable is about to enter its entry point.</summary>
    Postinit,

    /// <summary>A later change of the library list (dlopen, dlclose).</summary>
    DlActivity,
}

/// <summary>The dynamic linker's <c>r_debug.r_state</c>: whether its library list may be read now.</summary>
public enum RtldState
{
    /// <summary>RT_CONSISTENT: the list is complete and safe to walk.</summary>
    Consistent,

    /// <summary>RT_ADD: a library is being mapped; the list is about to grow.</summary>
    Adding,

    /// <summary>RT_DELETE: a library is being unmapped; the list is about to shrink.</summary>
    Deleting,
}

/// <summary>What the dynamic linker said at its event breakpoint.</summary>
/// <param name="Kind">Which event: preinit, postinit or a later dlopen/dlclose.</param>
/// <param name="State">The list's state at that moment; walk it only when <see cref="RtldState.Consistent"/>.</param>
public readonly record struct RtldEventMessage(RtldEventKind Kind, RtldState State);
