using ProcHex.Breakpoints;
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

    /// <summary>Destroy asked the control loop to end (S9).</summary>
    BeginRelease,

    /// <summary>Our wait for it failed: we can no longer tell what it does.</summary>
    WaitFailed,

    /// <summary>A fork or vfork started (S13).</summary>
    ForkStart,

    /// <summary>A fork completed, or a vfork child let go of the shared memory.</summary>
    ForkEnd,
}

/// <summary>
/// The victim lifecycle as a Stateless machine, and the truth about the victim (issue 16 item 2): every state and its
/// exits configured in one place, no state changed behind its back, and what the control loop and destroy decide by
/// (release mode, whether traps may be written, whether the text is ours to restore) derived from the state. A trigger
/// the current state does not permit is an <see cref="IllegalTransitionException"/>.
/// </summary>
/// <remarks>
/// <para>The victim lock serialises every trigger: the control loop fires them under it, destroy fires
/// <see cref="VictimTrigger.BeginRelease"/> under it, and <see cref="VictimTrigger.Release"/> once the loop has ended.
/// Clients read <see cref="State"/> from any thread.</para>
/// <para>Stop and Resume fire on every breakpoint hit, and Stateless allocates on every Fire. Those two go through a
/// table compiled once from the same configuration (only plain Permit transitions, none crossing a state with entry
/// or exit actions, so the table is exact); every other trigger goes through Stateless. Both write the one state
/// field.</para>
/// </remarks>
internal sealed class VictimLifecycle
{
    private static readonly VictimTrigger[] HotTriggers = [VictimTrigger.Stop, VictimTrigger.Resume];
    private static readonly LifecycleState?[,] HotTransitions = CompileHotTransitions();
    private static readonly bool[] LiveStates = Inside(LifecycleState.Live);
    private static readonly bool[] ReleasingStates = Inside(LifecycleState.Releasing);
    private static readonly bool[] LostStates = Inside(LifecycleState.Lost);

    private readonly StateMachine<LifecycleState, VictimTrigger> _machine;
    private readonly int _pid;
    private readonly ProcHexMetrics _metrics;
    private volatile LifecycleState _current;

    /// <param name="initial">Where the victim starts.</param>
    /// <param name="pid">For error messages.</param>
    /// <param name="metrics">Follows every move (<c>prochex.victims</c>).</param>
    /// <param name="breakpoints">What Idle and Forking take out of the text and put back; null for none.</param>
    public VictimLifecycle(LifecycleState initial, int pid, ProcHexMetrics? metrics = null, BreakpointSet? breakpoints = null)
    {
        _current = initial;
        _pid = pid;
        _metrics = metrics ?? ProcHexMetrics.Shared;
        _metrics.VictimMoved(null, Public(initial));
        _machine = new StateMachine<LifecycleState, VictimTrigger>(() => _current, Move);
        Configure(_machine, breakpoints);
        _machine.OnUnhandledTrigger((state, trigger) => throw Illegal(state, trigger));
    }

    /// <summary>The exact state, substates included.</summary>
    public LifecycleState Current => _current;

    /// <summary>The state as clients see it.</summary>
    public VictimState State => Public(_current);

    /// <summary>Under the control loop and not being released: the loop goes on answering stops.</summary>
    public bool IsLive => LiveStates[(int)_current];

    /// <summary>Running (through a fork or not): a stop moves it to stopped.</summary>
    public bool IsRunning => _current is LifecycleState.Running or LifecycleState.ForkRunning;

    /// <summary>Destroy asked the control loop to end and the victim still lives.</summary>
    public bool IsReleasing => ReleasingStates[(int)_current];

    /// <summary>
    /// A release has begun or is done: the handle is going away, so a late request is refused as released (what
    /// the old Quit flag answered), whatever the victim's fate.
    /// </summary>
    public bool ReleaseBegun => IsReleasing || _current is LifecycleState.Released;

    /// <summary>Dead, lost or released: the control loop ends.</summary>
    public bool IsOver => _current is LifecycleState.Undead or LifecycleState.Released || LostStates[(int)_current];

    /// <summary>Neither dead, nor lost, nor released.</summary>
    public bool IsAlive => !IsOver;

    /// <summary>Stopped by someone else: destroy leaves it stopped (S9, S20).</summary>
    public bool IsHeldByOthers => _current is LifecycleState.HeldByOthers or LifecycleState.ForkHeldByOthers or LifecycleState.ReleasingHeldByOthers;

    /// <summary>
    /// Whether a trap may be written now. Not while idle or through a fork (a breakpoint added then is recorded and
    /// planted when the state is left), nor while releasing (the loop takes traps out, one written now would stay).
    /// </summary>
    public bool MayWriteTraps => _current is LifecycleState.Created or LifecycleState.Grabbed
        or LifecycleState.Running or LifecycleState.Stopped or LifecycleState.HeldByOthers;

    /// <summary>
    /// Whether its text is ours to restore (S16). Not for a dead victim, nor for one the kernel took out of reach
    /// (an unobservable exec); but a loss that is only a failed wait leaves the victim running on, traced, every
    /// trap planted, and the release would let it (and every child it forks) run into them.
    /// </summary>
    public bool TextInReach => IsAlive || _current == LifecycleState.LostByFailedWait;

    public void Fire(VictimTrigger trigger)
    {
        if (trigger is VictimTrigger.Stop or VictimTrigger.Resume)
        {
            var state = _current;
            Move(HotTransitions[(int)state, (int)trigger] ?? throw Illegal(state, trigger));
            return;
        }

        _machine.Fire(trigger);
    }

    public bool CanFire(VictimTrigger trigger) => _machine.CanFire(trigger);

    /// <summary>Fires any trigger through Stateless itself, for the test that keeps the compiled table honest.</summary>
    internal void FireThroughStateless(VictimTrigger trigger) => _machine.Fire(trigger);

    /// <summary>The whole graph as Mermaid, for docs/victim-lifecycle.md.</summary>
    public static string ToMermaid() => MermaidGraph.Format(Blueprint().GetInfo());

    /// <summary>The state clients see for <paramref name="state"/>: a substate shows as the state it refines.</summary>
    public static VictimState Public(LifecycleState state) => state switch
    {
        LifecycleState.Created => VictimState.Created,
        LifecycleState.Grabbed => VictimState.Grabbed,
        LifecycleState.Observed => VictimState.Observed,
        LifecycleState.Idle => VictimState.Idle,
        LifecycleState.Running or LifecycleState.ForkRunning => VictimState.Running,
        LifecycleState.Stopped or LifecycleState.ForkStopped => VictimState.Stopped,
        LifecycleState.HeldByOthers or LifecycleState.ForkHeldByOthers => VictimState.HeldByOthers,
        LifecycleState.Releasing or LifecycleState.ReleasingHeldByOthers => VictimState.Releasing,
        LifecycleState.Undead => VictimState.Undead,
        LifecycleState.Lost or LifecycleState.LostByFailedWait => VictimState.Lost,
        LifecycleState.Released => VictimState.Released,
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, "a superstate is never current"),
    };

    /// <summary>The one writer of the state field: <c>prochex.victims</c> follows every move.</summary>
    private void Move(LifecycleState next)
    {
        _metrics.VictimMoved(Public(_current), Public(next));
        _current = next;
    }

    private static StateMachine<LifecycleState, VictimTrigger> Blueprint()
    {
        var machine = new StateMachine<LifecycleState, VictimTrigger>(LifecycleState.Created);
        Configure(machine, breakpoints: null);
        return machine;
    }

    /// <summary>Stop and Resume for every state, looked up as Stateless does: in the state, then its superstates.</summary>
    private static LifecycleState?[,] CompileHotTransitions()
    {
        var states = Blueprint().GetInfo().States.ToDictionary(s => (LifecycleState)s.UnderlyingState);
        var table = new LifecycleState?[Enum.GetValues<LifecycleState>().Length, Enum.GetValues<VictimTrigger>().Length];
        foreach (var (state, info) in states)
        {
            foreach (var trigger in HotTriggers)
            {
                for (var level = info; level is not null; level = level.Superstate)
                {
                    if (level.FixedTransitions.FirstOrDefault(t => (VictimTrigger)t.Trigger.UnderlyingTrigger == trigger) is { } transition)
                    {
                        table[(int)state, (int)trigger] = (LifecycleState)transition.DestinationState.UnderlyingState;
                        break;
                    }
                }
            }
        }

        return table;
    }

    /// <summary>For each state, whether it is <paramref name="superstate"/> or one of its substates, as the graph says.</summary>
    private static bool[] Inside(LifecycleState superstate)
    {
        var inside = new bool[Enum.GetValues<LifecycleState>().Length];
        foreach (var state in Blueprint().GetInfo().States)
        {
            for (var level = state; level is not null; level = level.Superstate)
            {
                inside[(int)(LifecycleState)state.UnderlyingState] |= (LifecycleState)level.UnderlyingState == superstate;
            }
        }

        return inside;
    }

    private IllegalTransitionException Illegal(LifecycleState state, VictimTrigger trigger) =>
        new($"pid {_pid}: cannot {Describe(trigger)} while it is {state}");

    private static void Configure(StateMachine<LifecycleState, VictimTrigger> machine, BreakpointSet? breakpoints)
    {
        ConfigureSetUp(machine);
        machine.Configure(LifecycleState.Observed)
            .Permit(VictimTrigger.Release, LifecycleState.Released);
        ConfigureLive(machine, breakpoints);
        ConfigureForking(machine, breakpoints);
        ConfigureReleasing(machine);
        ConfigureOver(machine);
    }

    private static void ConfigureSetUp(StateMachine<LifecycleState, VictimTrigger> machine)
    {
        Watched(machine.Configure(LifecycleState.SettingUp))
            .Permit(VictimTrigger.Resume, LifecycleState.Running)
            .Permit(VictimTrigger.Park, LifecycleState.Idle)
            .Permit(VictimTrigger.BeginRelease, LifecycleState.Releasing)
            .Permit(VictimTrigger.Release, LifecycleState.Released);
        machine.Configure(LifecycleState.Created).SubstateOf(LifecycleState.SettingUp);
        machine.Configure(LifecycleState.Grabbed).SubstateOf(LifecycleState.SettingUp);
    }

    private static void ConfigureLive(StateMachine<LifecycleState, VictimTrigger> machine, BreakpointSet? breakpoints)
    {
        machine.Configure(LifecycleState.Live)
            .Permit(VictimTrigger.BeginRelease, LifecycleState.Releasing)
            .Permit(VictimTrigger.Release, LifecycleState.Released);

        // S10: parked, every trap out of the text; they go back only if the victim goes on under control.
        machine.Configure(LifecycleState.Idle).SubstateOf(LifecycleState.Live)
            .OnEntry(() => breakpoints?.DisableAll(), "take the traps out")
            .OnExit(t => PutTrapsBackFor(t.Destination, breakpoints), "put the traps back unless released")
            .Permit(VictimTrigger.Continue, LifecycleState.Stopped);

        ConfigureStops(machine, LifecycleState.Live, LifecycleState.Running, LifecycleState.Stopped, LifecycleState.HeldByOthers);

        // A fork's end puts the traps back, and retries those that could not be written before (bpenable).
        machine.Configure(LifecycleState.Stopped)
            .OnEntryFrom(VictimTrigger.ForkEnd, () => breakpoints?.EnableAll(), "put the traps back")
            .Permit(VictimTrigger.ForkStart, LifecycleState.ForkStopped)
            .PermitReentry(VictimTrigger.ForkEnd);
    }

    /// <summary>S13: between a fork's start and its end every trap is out of the text, whatever else happens.</summary>
    private static void ConfigureForking(StateMachine<LifecycleState, VictimTrigger> machine, BreakpointSet? breakpoints)
    {
        machine.Configure(LifecycleState.Forking).SubstateOf(LifecycleState.Live)
            .OnEntry(() => breakpoints?.DisableAll(), "take the traps out");

        ConfigureStops(machine, LifecycleState.Forking, LifecycleState.ForkRunning, LifecycleState.ForkStopped, LifecycleState.ForkHeldByOthers);
        machine.Configure(LifecycleState.ForkStopped)
            .Permit(VictimTrigger.ForkEnd, LifecycleState.Stopped)
            .Ignore(VictimTrigger.ForkStart);

        // A thread the backend held while someone else's stop gathered may report a fork's start or end while we
        // wait for their resume (chaos seed 3): the traps come out and go back all the same, and it stays theirs.
        machine.Configure(LifecycleState.HeldByOthers)
            .OnEntryFrom(VictimTrigger.ForkEnd, () => breakpoints?.EnableAll(), "put the traps back")
            .Permit(VictimTrigger.ForkStart, LifecycleState.ForkHeldByOthers)
            .Ignore(VictimTrigger.ForkEnd);
        machine.Configure(LifecycleState.ForkHeldByOthers)
            .Permit(VictimTrigger.ForkEnd, LifecycleState.HeldByOthers)
            .Ignore(VictimTrigger.ForkStart);
    }

    /// <summary>
    /// The cycle the loop drives under <paramref name="superstate"/>: running until a stop, stopped until resumed or
    /// parked, held by others until they resume it; each may die, be taken away, or have our wait for it fail.
    /// </summary>
    private static void ConfigureStops(
        StateMachine<LifecycleState, VictimTrigger> machine,
        LifecycleState superstate,
        LifecycleState running,
        LifecycleState stopped,
        LifecycleState heldByOthers)
    {
        Watched(machine.Configure(running).SubstateOf(superstate))
            .Permit(VictimTrigger.Stop, stopped)
            .Permit(VictimTrigger.StopByOthers, heldByOthers);

        Watched(machine.Configure(stopped).SubstateOf(superstate))
            .Permit(VictimTrigger.Resume, running)
            .Permit(VictimTrigger.Park, LifecycleState.Idle)
            .Permit(VictimTrigger.StopByOthers, heldByOthers);

        Watched(machine.Configure(heldByOthers).SubstateOf(superstate))
            .Permit(VictimTrigger.ResumeByOthers, stopped)
            .Permit(VictimTrigger.BeginRelease, LifecycleState.ReleasingHeldByOthers);
    }

    /// <summary>S9: the loop answers the stop that woke it and those already queued, then ends; nothing is planted.</summary>
    private static void ConfigureReleasing(StateMachine<LifecycleState, VictimTrigger> machine)
    {
        Watched(machine.Configure(LifecycleState.Releasing))
            .Permit(VictimTrigger.StopByOthers, LifecycleState.ReleasingHeldByOthers)
            .Permit(VictimTrigger.Release, LifecycleState.Released)
            .Ignore(VictimTrigger.Continue)
            .Ignore(VictimTrigger.ForkStart)
            .Ignore(VictimTrigger.ForkEnd);

        machine.Configure(LifecycleState.ReleasingHeldByOthers).SubstateOf(LifecycleState.Releasing)
            .Permit(VictimTrigger.ResumeByOthers, LifecycleState.Releasing);
    }

    private static void ConfigureOver(StateMachine<LifecycleState, VictimTrigger> machine)
    {
        machine.Configure(LifecycleState.Undead)
            .Permit(VictimTrigger.Release, LifecycleState.Released)
            .Ignore(VictimTrigger.BeginRelease);

        machine.Configure(LifecycleState.Lost)
            .Permit(VictimTrigger.Release, LifecycleState.Released)
            .Ignore(VictimTrigger.BeginRelease);

        machine.Configure(LifecycleState.LostByFailedWait).SubstateOf(LifecycleState.Lost);

        machine.Configure(LifecycleState.Released);
    }

    /// <summary>A state whose stops the loop waits for: it may die, be taken away, or the wait for it may fail.</summary>
    private static StateMachine<LifecycleState, VictimTrigger>.StateConfiguration Watched(
        StateMachine<LifecycleState, VictimTrigger>.StateConfiguration state) =>
        state
            .Permit(VictimTrigger.Exit, LifecycleState.Undead)
            .Permit(VictimTrigger.LoseControl, LifecycleState.Lost)
            .Permit(VictimTrigger.WaitFailed, LifecycleState.LostByFailedWait);

    /// <summary>Leaving idle for a state that may hold traps puts them back; for a release or a death, not.</summary>
    private static void PutTrapsBackFor(LifecycleState destination, BreakpointSet? breakpoints)
    {
        if (destination is LifecycleState.Stopped)
        {
            breakpoints?.EnableAll();
        }
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
        VictimTrigger.BeginRelease => "begin to release it",
        VictimTrigger.WaitFailed => "fail to wait for it",
        VictimTrigger.ForkStart => "see a fork start",
        VictimTrigger.ForkEnd => "see a fork end",
        _ => trigger.ToString(),
    };
}
