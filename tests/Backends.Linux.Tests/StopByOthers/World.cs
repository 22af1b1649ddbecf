namespace ProcHex.Backends.Linux.Tests.StopByOthersModel;

/// <summary>
/// A victim under <see cref="StopByOthers"/>: the kernel model, the thread table the Linux adapter keeps, and a core
/// that answers as the control loop does (StoppedByOthers: await the resume; ResumedByOthers: resume). Every
/// <see cref="Move"/> is one thing that can happen next; <see cref="Moves"/> lists those enabled now.
/// </summary>
internal sealed class World : StopByOthers.IThreadTable
{
    public enum Kind
    {
        SigStop,
        SigCont,
        ThreadTraps,
        ThreadExits,
        ThreadIsBorn,
        TracerReads,
        CoreTakes,
        CoreAwaitsResume,
    }

    public readonly record struct Move(Kind Kind, int Tid = 0)
    {
        public override string ToString() => Tid == 0 ? Kind.ToString() : $"{Kind}({Tid})";
    }

    private readonly Dictionary<int, bool> _running = [];
    private readonly Queue<string> _toCore = new();
    private bool _coreWillAwait;
    private readonly StopByOthers _machine;
    private int _signalsLeft;
    private int _exitsLeft;
    private int _birthsLeft;
    private int _nextTid;

    /// <summary>A victim of <paramref name="threads"/> running threads, with budgets for what may happen to it.</summary>
    /// <param name="threads">Threads at the start.</param>
    /// <param name="signals">SIGSTOPs and SIGCONTs someone else may send.</param>
    /// <param name="exits">Threads that may exit.</param>
    /// <param name="births">Threads that may be born.</param>
    /// <param name="covered">Collects the machine's transitions (<see cref="S20Coverage"/>) the world goes through.</param>
    public World(int threads, int signals, int exits = 0, int births = 0, ISet<string>? covered = null)
    {
        _machine = new StopByOthers(this);
        if (covered is not null)
        {
            _machine.Observer = (name, before, after, actions) => covered.UnionWith(S20Coverage.Labels(name, before, after, actions));
        }

        _machine.CoreResumes();
        _signalsLeft = signals;
        _exitsLeft = exits;
        _birthsLeft = births;
        for (var i = 0; i < threads; i++)
        {
            Add();
        }
    }

    public KernelModel Kernel { get; } = new();

    public List<string> Violations { get; } = [];

    /// <summary>What the core heard, in order.</summary>
    public List<string> CoreHeard { get; } = [];

    public bool Collecting => false;

    public bool AnyRunning => _running.Values.Any(r => r);

    public StopByOthers.Phase Phase => _machine.Current;

    public string Signature =>
        $"{Kernel.Signature}|{string.Join("", _running.Select(r => r.Value ? "r" : "s"))}|{(_machine.Held ? "H" : "")}|{_machine.Current}|{_machine.IsAcknowledged}|" +
        $"{string.Join(",", Kernel.Tasks.Select(t => _machine.MembershipOf(t.Tid)?.ToString() ?? "-"))}|{string.Join(",", _toCore)}|{(_coreWillAwait ? "A" : "")}|{_signalsLeft}{_exitsLeft}{_birthsLeft}";

    public IEnumerable<Move> Moves()
    {
        if (_signalsLeft > 0)
        {
            yield return new Move(Kind.SigStop);
            yield return new Move(Kind.SigCont);
        }

        foreach (var t in Kernel.Tasks)
        {
            if (Kernel.CanStep(t))
            {
                yield return new Move(Kind.ThreadTraps, t.Tid);
            }

            if (_exitsLeft > 0 && t.Tid != 1 && Kernel.CanExit(t))
            {
                yield return new Move(Kind.ThreadExits, t.Tid);
            }

            if (Kernel.Readable(t))
            {
                yield return new Move(Kind.TracerReads, t.Tid);
            }
        }

        if (_birthsLeft > 0 && Kernel.Tasks.Any(t => t.State == KernelModel.State.Running))
        {
            yield return new Move(Kind.ThreadIsBorn);
        }

        if (_toCore.Count > 0 && !_coreWillAwait)
        {
            yield return new Move(Kind.CoreTakes);
        }

        if (_coreWillAwait)
        {
            yield return new Move(Kind.CoreAwaitsResume);
        }
    }

    public void Play(Move move)
    {
        switch (move.Kind)
        {
            case Kind.SigStop:
                _signalsLeft--;
                Kernel.SendStop();
                break;
            case Kind.SigCont:
                _signalsLeft--;
                Kernel.SendCont();
                break;
            case Kind.ThreadTraps:
                Kernel.Step(Task(move.Tid));
                break;
            case Kind.ThreadExits:
                _exitsLeft--;
                Kernel.Exit(Task(move.Tid));
                break;
            case Kind.ThreadIsBorn:
                // A running thread cloned: the adapter adopts the child as running (its first stop is on the way).
                _birthsLeft--;
                Add();
                break;
            case Kind.TracerReads:
                Read(Task(move.Tid));
                break;
            case Kind.CoreTakes:
                Take(_toCore.Dequeue());
                break;
            case Kind.CoreAwaitsResume:
                // The control loop's answer to StoppedByOthers, a moment after it took the event.
                _coreWillAwait = false;
                Apply(_machine.AwaitResume(_running.Keys.ToList()));
                break;
        }
    }

    /// <summary>Nothing is left to happen but signals we chose not to send.</summary>
    public bool Quiescent => !Moves().Any(m => m.Kind is not (Kind.SigStop or Kind.SigCont));

    /// <summary>Someone else may send one more signal, whatever the budget (the final SIGCONT of a liveness check).</summary>
    public void AllowOneMoreSignal() => _signalsLeft++;

    public int SignalsLeft => _signalsLeft;

    private KernelModel.Task Task(int tid) => Kernel.Tasks.First(t => t.Tid == tid);

    private void Add()
    {
        var task = Kernel.Spawn(++_nextTid);
        _running[task.Tid] = true;
    }

    /// <summary>The adapter's HandleStatus, reduced to what S20 sees.</summary>
    private void Read(KernelModel.Task t)
    {
        var report = Kernel.Read(t);
        _running[t.Tid] = false;
        switch (report)
        {
            case KernelModel.Report.GroupStop:
                Apply(_machine.GroupStopReported(t.Tid));
                break;
            case KernelModel.Report.TrapStop:
                Apply(_machine.TrapStopReported(t.Tid));
                break;
            case KernelModel.Report.Exited:
                _running.Remove(t.Tid);
                Apply(_machine.ThreadGone(t.Tid));
                break;
        }
    }

    private void Take(string stop)
    {
        CoreHeard.Add(stop);
        if (stop == "StoppedByOthers")
        {
            _machine.Acknowledge();
            _coreWillAwait = true;
            return;
        }

        // ResumedByOthers: the core resumes the victim (LinuxProcess.ResumeOnOwner).
        _machine.CoreResumes();
        foreach (var tid in _running.Keys.ToList())
        {
            ResumeIfFree(tid);
        }

        if (_machine.AnyMember)
        {
            Apply(_machine.CoreResumed());
        }
    }

    private void Apply(IReadOnlyList<StopAction> actions)
    {
        foreach (var action in actions.ToList())
        {
            switch (action.Kind)
            {
                case StopActionKind.Park:
                    var task = Task(action.Tid);
                    Kernel.SetExitKill(task, false);
                    _machine.ListenReturned(action.Tid, Kernel.Listen(task));
                    break;
                case StopActionKind.Resume:
                    ResumeIfFree(action.Tid);
                    break;
                case StopActionKind.RestoreOptions:
                    foreach (var t in Kernel.Tasks.Where(t => action.Tid == 0 || t.Tid == action.Tid))
                    {
                        Kernel.SetExitKill(t, true);
                    }

                    break;
                case StopActionKind.DropExitKill:
                    Kernel.SetExitKill(Task(action.Tid), false);
                    break;
                case StopActionKind.ReportStopped:
                    _toCore.Enqueue("StoppedByOthers");
                    break;
                case StopActionKind.ReportResumed:
                    _toCore.Enqueue("ResumedByOthers");
                    break;
            }
        }
    }

    private void ResumeIfFree(int tid)
    {
        if (!_running.TryGetValue(tid, out var running) || running || !_machine.MayResume(tid))
        {
            return;
        }

        var task = Task(tid);
        if (task.InGroupStopTrap && Kernel.GroupStop)
        {
            Violations.Add($"PTRACE_CONT of thread {tid} ended someone else's stop");
        }

        _machine.Resumed(tid);
        if (Kernel.Cont(task))
        {
            _running[tid] = true;
        }
    }
}
