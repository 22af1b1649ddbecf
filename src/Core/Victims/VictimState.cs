namespace ProcHex;

/// <summary>The lifecycle of a victim (the card's states); see docs/victim-lifecycle.md for the graph, whose substates show as the state they refine.</summary>
public enum VictimState
{
    /// <summary>Spawned by us, stopped before its first instruction; control not yet set up.</summary>
    Created,

    /// <summary>Attached by us and stopped; control not yet set up.</summary>
    Grabbed,

    /// <summary>Grabbed read-only: never stopped, no control loop.</summary>
    Observed,

    /// <summary>Parked at a requested event with its breakpoints out of the text, waiting for Continue (S10).</summary>
    Idle,

    /// <summary>Running; the control loop waits for its next stop.</summary>
    Running,

    /// <summary>Stopped at an event the control loop is handling.</summary>
    Stopped,

    /// <summary>Stopped by someone else; waits for them to resume it (S20).</summary>
    HeldByOthers,

    /// <summary>Dead (exited or killed).</summary>
    Undead,

    /// <summary>Control lost (set-id exec, forced detach).</summary>
    Lost,

    /// <summary>Destroy is under way: the control loop takes every breakpoint out, then the victim is let go (S9).</summary>
    Releasing,

    /// <summary>Destroyed: let go and removed from the session.</summary>
    Released,
}
