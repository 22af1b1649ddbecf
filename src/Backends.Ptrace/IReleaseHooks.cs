using ProcHex.Ports;

namespace ProcHex.Backends.Ptrace;

/// <summary>The per-OS hooks of <see cref="ReleaseSequence"/>.</summary>
internal interface IReleaseHooks
{
    /// <summary>The victim died before the release: there is nothing left to let go.</summary>
    bool Gone { get; }

    /// <summary>
    /// True when <see cref="ReleaseMode.Kill"/> kills at once, the traps left in a text that dies with it (Linux:
    /// SIGKILL acts on a running victim). False when a kill, too, needs the victim stopped first (FreeBSD's PT_KILL),
    /// and then the text is restored on the way as for the other modes.
    /// </summary>
    bool KillsWithoutStopping { get; }

    /// <summary>Drops what is kept about a victim that died before the release.</summary>
    void ForgetGone();

    /// <summary>
    /// Stops every thread, and hands back a SIGTRAP a thread took from one of our traps as it was stopped (its PC
    /// rewound): nothing of ours may be pending once the traps are out. False when the victim died meanwhile.
    /// </summary>
    bool StopForRelease(ReleaseMode mode);

    /// <summary>A trap could not be taken out (logged); returns whether to go on with the others.</summary>
    bool RestoreFailed(ulong address, TracerException error);

    /// <summary>Kills the victim and reaps it.</summary>
    void Kill();

    /// <summary>Detaches every thread: running for <see cref="ReleaseMode.Run"/>, left in someone else's stop while it lasts for <see cref="ReleaseMode.Hang"/>.</summary>
    void Detach(ReleaseMode mode);

    /// <summary>The victim is let go.</summary>
    void Released(ReleaseMode mode);
}
