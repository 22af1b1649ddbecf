using Stateless;
using Stateless.Graph;

namespace ProcHex.Victims;

/// <summary>What moves a victim through its lifecycle.</summary>
internal enum VictimTrigger
{
    /// <summary>Set running (after setup or after handling a stop).</summary>
    Resume,

    /// <summary>Reached a requested event: park idle (S10).</summary>
    Park,

    /// <summary>The client's Continue woke an idle victim (S11).</summary>
    Continue,

    /// <summary>Stopped at an event for the control loop.</summary>
    Stop,

    /// <summary>Somebody else stopped it (S20).</summary>
    StopByOthers,

    /// <summary>Somebody else resumed it (S20).</summary>
    ResumeByOthers,

    /// <summary>It exited or was killed.</summary>
    Exit,

    /// <summary>Control was lost.</summary>
    LoseControl,

    /// <summary>Destroyed by the session (S9).</summary>
    Release,
}

/// <summary>
/// The victim lifecycle as a Stateless machine: every state and its exits configured in one place, no state
/// changed behind its back. A trigger the current state does not permit is an <see cref="IllegalTransitionException"/>.
/// </summary>
/// <remarks>
/// Stop and Resume fire on every breakpoint hit, and Stateless allocates on every Fire. Those two go through a
/// table compiled once from the same configuration (it has only plain Permit transitions, so the table is exact);
/// every other trigger goes through Stateless. Both read and write the one state field.
/// </remarks>
internal sealed class VictimLifecycle
{
    private static readonly VictimState?[,] HotTransitions = CompileHotTransitions();

    private readonly StateMachine<VictimState, VictimTrigger> _machine;
    private readonly int _pid;
    private readonly ProcHexMetrics _metrics;
    private volatile VictimState _state;

    public VictimLifecycle(VictimState initial, int pid, ProcHexMetrics? metrics = null)
    {
        _state = initial;
        _pid = pid;
        _metrics = metrics ?? ProcHexMetrics.Shared;
        _metrics.VictimMoved(null, initial);
        _machine = new StateMachine<VictimState, VictimTrigger>(() => _state, Move);
        Configure(_machine);
        _machine.OnUnhandledTrigger((state, trigger) => throw Illegal(state, trigger));
    }

    public VictimState State => _state;

    public bool IsOver => State is VictimState.Undead or VictimState.Lost or VictimState.Released;

    public void Fire(VictimTrigger trigger)
    {
        if (trigger is VictimTrigger.Stop or VictimTrigger.Resume)
        {
            var state = State;
            Move(HotTransitions[(int)state, (int)trigger] ?? throw Illegal(state, trigger));
            return;
        }

        _machine.Fire(trigger);
    }

    /// <summary>The one writer of the state field: <c>prochex.victims</c> follows every move.</summary>
    private void Move(VictimState next)
    {
        _metrics.VictimMoved(_state, next);
        _state = next;
    }

    public bool CanFire(VictimTrigger trigger) => _machine.CanFire(trigger);

    /// <summary>Fires any trigger through Stateless itself, for the test that keeps the compiled table honest.</summary>
    internal void FireThroughStateless(VictimTrigger trigger) => _machine.Fire(trigger);

    /// <summary>The whole graph as Mermaid, for docs/victim-lifecycle.md.</summary>
    public static string ToMermaid()
    {
        var machine = new StateMachine<VictimState, VictimTrigger>(VictimState.Created);
        Configure(machine);
        return MermaidGraph.Format(machine.GetInfo());
    }

    private static VictimState?[,] CompileHotTransitions()
    {
        var machine = new StateMachine<VictimState, VictimTrigger>(VictimState.Created);
        Configure(machine);
        var table = new VictimState?[Enum.GetValues<VictimState>().Length, Enum.GetValues<VictimTrigger>().Length];
        foreach (var state in machine.GetInfo().States)
        {
            foreach (var transition in state.FixedTransitions)
            {
                table[(int)(VictimState)state.UnderlyingState, (int)(VictimTrigger)transition.Trigger.UnderlyingTrigger] =
                    (VictimState)transition.DestinationState.UnderlyingState;
            }
        }

        return table;
    }

    private IllegalTransitionException Illegal(VictimState state, VictimTrigger trigger) =>
        new($"pid {_pid}: cannot {Describe(trigger)} while it is {state}");

    private static void Configure(StateMachine<VictimState, VictimTrigger> machine)
    {
        machine.Configure(VictimState.Created)
            .Permit(VictimTrigger.Resume, VictimState.Running)
            .Permit(VictimTrigger.Park, VictimState.Idle)
            .Permit(VictimTrigger.Exit, VictimState.Undead)
            .Permit(VictimTrigger.LoseControl, VictimState.Lost)
            .Permit(VictimTrigger.Release, VictimState.Released);

        machine.Configure(VictimState.Grabbed)
            .Permit(VictimTrigger.Resume, VictimState.Running)
            .Permit(VictimTrigger.Park, VictimState.Idle)
            .Permit(VictimTrigger.Exit, VictimState.Undead)
            .Permit(VictimTrigger.LoseControl, VictimState.Lost)
            .Permit(VictimTrigger.Release, VictimState.Released);

        machine.Configure(VictimState.Observed)
            .Permit(VictimTrigger.Release, VictimState.Released);

        machine.Configure(VictimState.Idle)
            .Permit(VictimTrigger.Continue, VictimState.Stopped)
            .Permit(VictimTrigger.Release, VictimState.Released);

        machine.Configure(VictimState.Running)
            .Permit(VictimTrigger.Stop, VictimState.Stopped)
            .Permit(VictimTrigger.StopByOthers, VictimState.HeldByOthers)
            .Permit(VictimTrigger.Exit, VictimState.Undead)
            .Permit(VictimTrigger.LoseControl, VictimState.Lost)
            .Permit(VictimTrigger.Release, VictimState.Released);

        machine.Configure(VictimState.Stopped)
            .Permit(VictimTrigger.Resume, VictimState.Running)
            .Permit(VictimTrigger.Park, VictimState.Idle)
            .Permit(VictimTrigger.StopByOthers, VictimState.HeldByOthers)
            .Permit(VictimTrigger.Exit, VictimState.Undead)
            .Permit(VictimTrigger.LoseControl, VictimState.Lost)
            .Permit(VictimTrigger.Release, VictimState.Released);

        machine.Configure(VictimState.HeldByOthers)
            .Permit(VictimTrigger.ResumeByOthers, VictimState.Stopped)
            .Permit(VictimTrigger.Exit, VictimState.Undead)
            .Permit(VictimTrigger.LoseControl, VictimState.Lost)
            .Permit(VictimTrigger.Release, VictimState.Released);

        machine.Configure(VictimState.Undead)
            .Permit(VictimTrigger.Release, VictimState.Released);

        machine.Configure(VictimState.Lost)
            .Permit(VictimTrigger.Release, VictimState.Released);

        machine.Configure(VictimState.Released);
    }

    private static string Describe(VictimTrigger trigger) => trigger switch
    {
        VictimTrigger.Resume => "set it running",
        VictimTrigger.Park => "park it idle",
        VictimTrigger.Continue => "continue it",
        VictimTrigger.Stop => "stop it",
        VictimTrigger.StopByOthers => "see it stopped by others",
        VictimTrigger.ResumeByOthers => "see it resumed by others",
        VictimTrigger.Exit => "see it exit",
        VictimTrigger.LoseControl => "lose control of it",
        VictimTrigger.Release => "release it",
        _ => trigger.ToString(),
    };
}
