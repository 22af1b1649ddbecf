namespace ProcHex.Backends.Linux;

/// <summary>
/// S20 on Linux: what we know of a stop someone else (SIGSTOP, SIGTSTP, ...) put a seized victim in, and what to
/// do about each report. A pure state machine: it takes the kernel's reports and the core's calls as events and
/// answers with <see cref="StopAction"/>s for the owner thread to carry out; it makes no system call itself, so
/// every interleaving of events can be enumerated in a test (tests/Backends.Linux.Tests/StopByOthersMachineTests).
/// </summary>
/// <remarks>
/// <para>Kernel facts it rests on (ptrace(2) "Group-stop", "PTRACE_LISTEN"; kernel/signal.c): each seized thread
/// reports its own part of a group-stop as PTRACE_EVENT_STOP with the stop signal; PTRACE_CONT of such a thread
/// ends its part of the stop (so we may only do it once the core has seen the stop); PTRACE_LISTEN keeps it stopped
/// and lets a SIGCONT, a new stop or an interrupt wake it with a new report; SIGCONT marks every thread with a
/// notice (JOBCTL_TRAP_NOTIFY) that a thread in a plain trap-stop only reports once it is resumed or parked.</para>
/// <para>The victim's <see cref="Phase"/>: <see cref="Phase.Quiet"/> (no stop reported to the core; threads may
/// be gathering into one), <see cref="Phase.Reported"/> (the core was told, <see cref="IsAcknowledged"/> once it
/// took the event), <see cref="Phase.AwaitingResume"/> (the core waits for someone else's SIGCONT). Each thread in
/// someone else's stop is a member: <see cref="Membership.Stopped"/> (reported it, in a trap-stop),
/// <see cref="Membership.Parked"/> (in PTRACE_LISTEN) or <see cref="Membership.Interrupted"/> (taken out of the
/// listen by our PTRACE_INTERRUPT, its report on the way). Any report from a member ends what it was doing.</para>
/// <para>Owner thread only, except <see cref="Acknowledge"/>, which the core's thread calls as it takes the
/// event.</para>
/// </remarks>
internal sealed class StopByOthers(StopByOthers.IThreadTable threads)
{
    private readonly Dictionary<int, Membership> _members = [];
    private readonly List<StopAction> _actions = [];
    private volatile bool _acknowledged;

    public enum Phase
    {
        Quiet,
        Reported,
        AwaitingResume,
    }

    public enum Membership
    {
        Stopped,
        Parked,
        Interrupted,
    }

    /// <summary>What the victim's thread table knows, read only when a decision needs it.</summary>
    public interface IThreadTable
    {
        /// <summary>A stop-all is collecting every thread's stop: nothing is reported or parked meanwhile.</summary>
        bool Collecting { get; }

        /// <summary>Some thread has not reported a stop since it was last resumed.</summary>
        bool AnyRunning { get; }
    }

    public Phase Current { get; private set; }

    /// <summary>
    /// The core holds the victim: no thread runs until it resumes it. A victim starts held; a stop-all, a lost
    /// victim and the report that someone else's stop is over (the core decides when to go on) hold it again.
    /// </summary>
    public bool Held { get; private set; } = true;

    /// <summary>
    /// Told of every event the machine took that could change its phase or ask for actions: the event's name, the
    /// phase before and after, and the actions. The deterministic simulation counts the transitions it covered with
    /// it; null otherwise (one test per event, never per breakpoint hit).
    /// </summary>
    internal Action<string, Phase, Phase, IReadOnlyList<StopAction>>? Observer { get; set; }

    /// <summary>The core has taken the <see cref="Ports.StopReason.StoppedByOthers"/> event of the current stop.</summary>
    public bool IsAcknowledged => _acknowledged;

    /// <summary>Some thread is in someone else's stop.</summary>
    public bool AnyMember => _members.Count > 0;

    /// <summary>
    /// The core asked to await someone else's resume (<see cref="AwaitResume"/>) and has not been told of it yet. A
    /// stop-all takes the phase back to <see cref="Phase.Reported"/> while it collects, but the core still waits: the
    /// last member may leave the stop during that collection, and the resume must then be reported once it is over
    /// (linux simulation seed 67588: the core held a running victim for good).
    /// </summary>
    public bool AwaitsResume { get; private set; }

    public bool IsMember(int tid) => _members.ContainsKey(tid);

    public bool IsParked(int tid) => _members.TryGetValue(tid, out var m) && m == Membership.Parked;

    public Membership? MembershipOf(int tid) => _members.TryGetValue(tid, out var m) ? m : null;

    /// <summary>
    /// May the owner resume this stopped thread? Not while the core holds the victim, nor when the thread is parked
    /// (the listen holds it) or in a stop the core has not seen yet: PTRACE_CONT would end someone else's stop
    /// behind the core's back.
    /// </summary>
    public bool MayResume(int tid) =>
        !Held && (!_members.TryGetValue(tid, out var m) || (m != Membership.Parked && _acknowledged));

    /// <summary>The core holds every thread where it is (a lost victim, for good).</summary>
    public void Hold() => Held = true;

    /// <summary>The core is about to resume the victim: threads free of any stop may run again.</summary>
    public void CoreResumes() => Held = false;

    /// <summary>A thread was resumed (PTRACE_CONT): its part of any stop is over.</summary>
    public void Resumed(int tid) => _members.Remove(tid);

    /// <summary>A thread reported PTRACE_EVENT_STOP with a stop signal: its part of a group-stop.</summary>
    public IReadOnlyList<StopAction> GroupStopReported(int tid)
    {
        _actions.Clear();
        var before = Current;
        if (_members.Count == 0)
        {
            // A new stop by someone else: none of its threads may run again until the core has seen it.
            _acknowledged = false;
        }

        // A report ends a listen: a parked thread reports only when the kernel took it out of PTRACE_LISTEN (here,
        // for a new group-stop). Left marked parked it would never be parked again, and the next SIGCONT would leave
        // it in a plain trap-stop for good (the fifth race, found by the churning SIGSTOP/SIGCONT test).
        _members[tid] = Membership.Stopped;
        if (threads.Collecting)
        {
            return Observed(nameof(GroupStopReported), before);
        }

        // Parked at once, whatever the phase: its report may be older than a SIGCONT already sent (another thread's
        // notice of it can even be read first), and in a plain trap-stop it would never hear of that SIGCONT. The
        // listen keeps it stopped while the stop lasts and wakes it at once if the stop is over.
        _actions.Add(StopAction.Park(tid));
        ReportIfComplete();
        return Observed(nameof(GroupStopReported), before);
    }

    /// <summary>
    /// A thread reported PTRACE_EVENT_STOP with SIGTRAP: for a member, the notice that someone sent SIGCONT (its
    /// part of the stop is over); for anyone else, an interrupt of ours, a new thread's first stop, or a SIGCONT
    /// notice that came before the thread had joined the stop.
    /// </summary>
    public IReadOnlyList<StopAction> TrapStopReported(int tid)
    {
        _actions.Clear();
        var before = Current;
        if (_members.Remove(tid))
        {
            if (Current != Phase.Quiet)
            {
                // The core knows of the stop: it hears of the resume once every thread is back (or, when it has not
                // asked to await it yet, from that call). Meanwhile this thread stays stopped.
                CheckResumed();
                return Observed(nameof(TrapStopReported), before);
            }

            // The stop ended before every thread had reported it, so the core never heard of it: carry on.
            _actions.Add(StopAction.RestoreOptions(tid));
            _actions.Add(StopAction.Resume(tid));
            return Observed(nameof(TrapStopReported), before);
        }

        // In the SIGCONT case the threads that had joined wait for a notice of their own, and a thread in a plain
        // trap-stop gets it only once parked (or resumed): let the kernel deliver it.
        if (!Held && !threads.Collecting)
        {
            ParkStopped();
        }

        _actions.Add(StopAction.Resume(tid));
        return Observed(nameof(TrapStopReported), before);
    }

    /// <summary>A thread's listen succeeded (the kernel holds it now) or failed (it stays in its trap-stop).</summary>
    public void ListenReturned(int tid, bool succeeded)
    {
        if (succeeded && _members.ContainsKey(tid))
        {
            _members[tid] = Membership.Parked;
        }
    }

    /// <summary>A stop-all is about to interrupt every thread (the victim is held): a parked one will report again.</summary>
    public void StopAllBegins()
    {
        Held = true;
        if (Current == Phase.AwaitingResume)
        {
            Current = Phase.Reported;
            Observer?.Invoke(nameof(StopAllBegins), Phase.AwaitingResume, Current, []);
        }
    }

    /// <summary>A parked thread was sent PTRACE_INTERRUPT by a stop-all: its report is on the way.</summary>
    public void Interrupted(int tid)
    {
        if (_members.ContainsKey(tid))
        {
            _members[tid] = Membership.Interrupted;
        }
    }

    /// <summary>The core took the <see cref="Ports.StopReason.StoppedByOthers"/> event. Any thread.</summary>
    public void Acknowledge() => _acknowledged = true;

    /// <summary>
    /// The core waits for someone else to end the stop: every thread not parked yet drops EXITKILL (a tracer crash
    /// must leave even a created victim stopped), every stopped member is parked, and a stop already over is
    /// reported as such at once.
    /// </summary>
    public IReadOnlyList<StopAction> AwaitResume(IEnumerable<int> threads)
    {
        _actions.Clear();
        var before = Current;
        Current = Phase.AwaitingResume;
        AwaitsResume = true;
        foreach (var tid in threads)
        {
            if (!IsParked(tid))
            {
                _actions.Add(StopAction.DropExitKill(tid));
            }
        }

        // Never a thread parked already: one that SIGCONT woke may have its report still unread, and a second
        // LISTEN would succeed on its new trap stop and park it for good, with no notice left to wake it.
        ParkStopped();
        CheckResumed();
        return Observed(nameof(AwaitResume), before);
    }

    /// <summary>
    /// The core resumed the victim. Members it has not seen yet (a stop-all collected them while the victim was
    /// held) stay stopped: parked, so a SIGCONT still reaches them, and reported once every thread has stopped.
    /// </summary>
    public IReadOnlyList<StopAction> CoreResumed()
    {
        _actions.Clear();
        if (_members.Count > 0)
        {
            var before = Current;
            ParkStopped();
            ReportIfComplete();
            return Observed(nameof(CoreResumed), before);
        }

        if (AwaitsResume)
        {
            // Every member left the stop while a stop-all collected (the core resumes after it): it is over.
            var before = Current;
            CheckResumed();
            return Observed(nameof(CoreResumed), before);
        }

        return _actions;
    }

    /// <summary>A thread other than the leader exited: it may have been the last one yet to join or leave the stop.</summary>
    public IReadOnlyList<StopAction> ThreadGone(int tid)
    {
        _actions.Clear();
        var before = Current;
        _members.Remove(tid);
        CheckResumed();
        ReportIfComplete();
        return Observed(nameof(ThreadGone), before);
    }

    /// <summary>
    /// exec: every other thread is gone, and the leader is a new one; nobody stops in the middle of an exec, so
    /// whatever stop the old threads were in is over.
    /// </summary>
    public IReadOnlyList<StopAction> Exec()
    {
        _actions.Clear();
        var before = Current;
        _members.Clear();
        if (Current == Phase.AwaitingResume || AwaitsResume)
        {
            CheckResumed();
        }

        Current = Phase.Quiet;
        return Observed(nameof(Exec), before);
    }

    /// <summary>The victim is gone or let go: nothing is left to track.</summary>
    public void Clear()
    {
        var before = Current;
        _members.Clear();
        Current = Phase.Quiet;
        AwaitsResume = false;
        if (before != Phase.Quiet)
        {
            Observer?.Invoke(nameof(Clear), before, Current, []);
        }
    }

    private List<StopAction> Observed(string name, Phase before)
    {
        Observer?.Invoke(name, before, Current, _actions);
        return _actions;
    }

    /// <summary>The core hears of a stop by someone else once every thread has stopped.</summary>
    private void ReportIfComplete()
    {
        if (Current != Phase.Quiet || threads.Collecting || _members.Count == 0 || threads.AnyRunning)
        {
            return;
        }

        Current = Phase.Reported;
        _actions.Add(StopAction.ReportStopped);
    }

    /// <summary>
    /// Once the core awaits it and no thread is in the stop any more, the stop is over: say so (after a stop-all's
    /// collection, not during it).
    /// </summary>
    private void CheckResumed()
    {
        if (_members.Count > 0 || !(Current == Phase.AwaitingResume || (AwaitsResume && !threads.Collecting)))
        {
            return;
        }

        Current = Phase.Quiet;
        AwaitsResume = false;
        Held = true;
        _actions.Add(StopAction.RestoreOptionsAll);
        _actions.Add(StopAction.ReportResumed);
    }

    private void ParkStopped()
    {
        foreach (var (tid, membership) in _members)
        {
            if (membership == Membership.Stopped)
            {
                _actions.Add(StopAction.Park(tid));
            }
        }
    }
}
