namespace ProcHex;

/// <summary>Where a created victim waits for ProcHexSession.Continue before it runs on (S1, S10).</summary>
public enum Rendezvous
{
    /// <summary>Before the first instruction of the new image.</summary>
    Create,

    /// <summary>Initial libraries mapped, their initializers not yet run.</summary>
    Preinit,

    /// <summary>Library initializers done, the executable's entry point not yet run.</summary>
    Postinit,

    /// <summary>
    /// At the first instruction of <c>main</c>, found without a <c>main</c> symbol too (from
    /// <c>__libc_start_main</c>'s first argument, or the entry code). Where it cannot be found the victim stops at the
    /// closest rendezvous before it, which <see cref="ProcessHandle.Rendezvous"/> names.
    /// </summary>
    Main,
}

/// <summary>How ProcHexSession.GrabAsync holds the process.</summary>
public enum GrabMode
{
    /// <summary>Stopped at the grab rendezvous, then controlled by a control loop; run-on-last-close (S3).</summary>
    Control,

    /// <summary>Never stopped; for stack walking and symbol lookup; cacheable (S4).</summary>
    ReadOnly,

    /// <summary>Traced and stopped, but no control loop: it stays stopped until released.</summary>
    ControlWithoutMonitor,

    /// <summary>
    /// <see cref="Control"/> where the OS allows it; where it refuses control (another tracer, another user's,
    /// set-id or non-dumpable process, a tracing policy) but allows reading, a read-only handle as
    /// <see cref="ReadOnly"/> gives, whose <see cref="ProcessHandle.ReadOnlyReason"/> says why (issue 22 item 5).
    /// </summary>
    ControlOrReadOnly,
}
