namespace ProcHex.Victims;

/// <summary>
/// Where a victim is in its lifecycle, as the control loop needs to know it (issue 16 item 2): every fact the loop
/// and destroy act on (held by others, a fork under way, a release under way, lost with its traps still planted) is a
/// state here, not a flag beside the machine. Clients see it through <see cref="VictimState"/>, which folds the
/// substates into their public state. The superstates (<see cref="SettingUp"/>, <see cref="Live"/>,
/// <see cref="Forking"/>) are never current.
/// </summary>
internal enum LifecycleState
{
    /// <summary>Superstate: stopped at the start, control not yet set up (S12).</summary>
    SettingUp,

    /// <summary>Spawned by us, stopped before its first instruction.</summary>
    Created,

    /// <summary>Attached by us and stopped.</summary>
    Grabbed,

    /// <summary>Grabbed read-only: never stopped, no control loop.</summary>
    Observed,

    /// <summary>Superstate: set up, under the control loop, not being released.</summary>
    Live,

    /// <summary>Parked at a requested event with its breakpoints out of the text (S10).</summary>
    Idle,

    /// <summary>Running; the control loop waits for its next stop.</summary>
    Running,

    /// <summary>Stopped at an event the control loop is handling.</summary>
    Stopped,

    /// <summary>Stopped by someone else; waits for them to resume it (S20). Released, it is left stopped.</summary>
    HeldByOthers,

    /// <summary>Superstate: a fork or vfork is under way, every trap out of the text until it is done (S13).</summary>
    Forking,

    /// <summary><see cref="Running"/> while a fork is under way.</summary>
    ForkRunning,

    /// <summary><see cref="Stopped"/> while a fork is under way.</summary>
    ForkStopped,

    /// <summary><see cref="HeldByOthers"/> while a fork is under way.</summary>
    ForkHeldByOthers,

    /// <summary>Destroy asked the control loop to end (S9): no new trap is written, the loop takes every one out.</summary>
    Releasing,

    /// <summary><see cref="Releasing"/> a victim someone else stopped: it is let go stopped (S9, S20).</summary>
    ReleasingHeldByOthers,

    /// <summary>Dead (exited or killed).</summary>
    Undead,

    /// <summary>Control lost (set-id exec, forced detach): the text is out of our reach.</summary>
    Lost,

    /// <summary>
    /// <see cref="Lost"/> because our wait for it failed: it runs on, traced, every trap planted, so its text is still
    /// ours to restore before it is let go.
    /// </summary>
    LostByFailedWait,

    /// <summary>Destroyed: let go and removed from the session.</summary>
    Released,
}
