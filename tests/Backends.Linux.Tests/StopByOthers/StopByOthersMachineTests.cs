using ProcHex.Backends.Linux.Tests.StopByOthersModel;
using Kind = ProcHex.Backends.Linux.Tests.StopByOthersModel.World.Kind;
using Move = ProcHex.Backends.Linux.Tests.StopByOthersModel.World.Move;

namespace ProcHex.Backends.Linux.Tests;

/// <summary>
/// S20 on Linux, proven on the pure <see cref="StopByOthers"/> machine over a model of the kernel's job control:
/// every interleaving of someone else's SIGSTOP/SIGCONT, thread reports, thread births and exits, and the core's
/// answers, for one to three threads, is enumerated (states are memoized, so "every" is exhaustive within the
/// signal budget). At every step we never end someone else's stop and never leave EXITKILL on a listening thread;
/// in every state where nothing but a signal can happen, a victim nobody stopped runs, and a victim someone
/// stopped is stopped, reported to the core, and runs again after one more SIGCONT, whatever happens in between.
/// </summary>
public sealed class StopByOthersMachineTests
{
    [Theory]
    [Trait("Spec", "S20")]
    [InlineData(1, 4, 0, 0)]
    [InlineData(2, 4, 0, 0)]
    [InlineData(3, 3, 0, 0)]
    [InlineData(2, 3, 1, 0)]
    [InlineData(2, 3, 0, 1)]
    [InlineData(3, 2, 1, 1)]
    public void Every_interleaving_keeps_S20(int threads, int signals, int exits, int births)
    {
        var explorer = new Explorer(threads, signals, exits, births);
        explorer.Run();
        Assert.True(explorer.Failure is null, explorer.Failure);
        Assert.True(explorer.QuiescentStates > 0, "no quiescent state was reached: the exploration proves nothing");
    }

    [Fact]
    [Trait("Spec", "S20")]
    public void The_interleavings_reach_every_transition_of_the_machine()
    {
        // Every row of the machine is proven by this exploration or, for those that need a stop-all (which this
        // model has no notion of), by the linux simulation; only the guards against a failed listen are reached by
        // neither (S20Coverage.Defensive says why they stay).
        var covered = new HashSet<string>();
        foreach (var (threads, signals, exits, births) in Configurations)
        {
            new Explorer(threads, signals, exits, births, covered).Run();
        }

        var unreached = S20Coverage.All.Except(covered).Except(S20Coverage.ThroughStopAll).Except(S20Coverage.Defensive).ToList();
        var unlisted = covered.Except(S20Coverage.All).ToList();
        Assert.True(unreached.Count == 0, $"never reached: {string.Join("; ", unreached)}");
        Assert.True(unlisted.Count == 0, $"reached but not listed in S20Coverage: {string.Join("; ", unlisted)}");
        Assert.Empty(S20Coverage.Defensive.Intersect(covered));
    }

    // The races found in this code so far, each replayed as the sequence that once broke it.

    [Fact]
    [Trait("Spec", "S20")]
    public void Race_chaos_seed_11_a_SIGCONT_before_every_thread_reported_the_stop_leaves_no_thread_stopped()
    {
        var world = Replay(
            2,
            new Move(Kind.SigStop),
            new Move(Kind.ThreadTraps, 1),
            new Move(Kind.TracerReads, 1),
            new Move(Kind.SigCont),
            new Move(Kind.ThreadTraps, 2));
        Drain(world);
        Assert.All(world.Kernel.Tasks, t => Assert.Equal(KernelModel.State.Running, t.State));
        Assert.Empty(world.CoreHeard);
    }

    [Fact]
    [Trait("Spec", "S20")]
    public void Race_a_thread_SIGCONT_woke_is_not_parked_again_before_its_report_is_read()
    {
        // The core awaits the resume only after SIGCONT woke the parked thread: a second PTRACE_LISTEN would
        // succeed on its new trap-stop (its report unread) and hide it for good.
        var world = Replay(
            1,
            new Move(Kind.SigStop),
            new Move(Kind.ThreadTraps, 1),
            new Move(Kind.TracerReads, 1),
            new Move(Kind.CoreTakes),
            new Move(Kind.CoreAwaitsResume),
            new Move(Kind.SigCont),
            new Move(Kind.ThreadTraps, 1));
        Drain(world);
        Assert.Equal(KernelModel.State.Running, world.Kernel.Tasks[0].State);
        Assert.Equal(["StoppedByOthers", "ResumedByOthers"], world.CoreHeard);
    }

    [Fact]
    [Trait("Spec", "S20")]
    public void Race_a_parked_thread_has_EXITKILL_dropped_before_it_listens()
    {
        var world = Replay(
            2,
            new Move(Kind.SigStop),
            new Move(Kind.ThreadTraps, 1),
            new Move(Kind.ThreadTraps, 2),
            new Move(Kind.TracerReads, 1),
            new Move(Kind.TracerReads, 2),
            new Move(Kind.CoreTakes),
            new Move(Kind.CoreAwaitsResume));
        Assert.All(world.Kernel.Tasks, t => Assert.Equal(KernelModel.State.Listening, t.State));
        Assert.All(world.Kernel.Tasks, t => Assert.False(t.ExitKill));
    }

    [Fact]
    [Trait("Spec", "S20")]
    public void Race_a_parked_thread_woken_by_a_new_SIGSTOP_is_parked_again_and_the_next_SIGCONT_wakes_it()
    {
        // The churning SIGSTOP/SIGCONT test, 1 run in 2: a thread parked while a stop was gathering is woken by the
        // next SIGSTOP and reports it; marked parked still, it was never parked again, and the last SIGCONT left it
        // in a plain trap-stop for good.
        var world = Replay(
            2,
            new Move(Kind.SigStop),
            new Move(Kind.ThreadTraps, 1),
            new Move(Kind.TracerReads, 1), // parked while the stop gathers (thread 2 still runs)
            new Move(Kind.SigCont),
            new Move(Kind.SigStop),
            new Move(Kind.ThreadTraps, 1),
            new Move(Kind.TracerReads, 1), // woken out of the listen to report the new stop
            new Move(Kind.ThreadTraps, 2),
            new Move(Kind.TracerReads, 2));
        Drain(world);
        Assert.Equal(["StoppedByOthers"], world.CoreHeard);
        Assert.All(world.Kernel.Tasks, t => Assert.Equal(KernelModel.State.Listening, t.State));

        world.AllowOneMoreSignal();
        world.Play(new Move(Kind.SigCont));
        Drain(world);
        Assert.All(world.Kernel.Tasks, t => Assert.Equal(KernelModel.State.Running, t.State));
        Assert.Equal(["StoppedByOthers", "ResumedByOthers"], world.CoreHeard);
    }

    [Fact]
    [Trait("Spec", "S20")]
    public void Race_found_by_this_model_a_group_stop_report_read_after_another_threads_SIGCONT_notice_is_not_left_stopped()
    {
        // Thread 1 reports the stop, thread 2 the SIGCONT that ended it, and the owner reads thread 2 first: when
        // thread 2 was resumed nobody was a member to park, and thread 1, in a plain trap-stop, never hears of the
        // SIGCONT unless it is parked (or resumed) on its own report.
        var world = Replay(
            2,
            new Move(Kind.SigStop),
            new Move(Kind.ThreadTraps, 1),
            new Move(Kind.SigCont),
            new Move(Kind.ThreadTraps, 2),
            new Move(Kind.TracerReads, 2),
            new Move(Kind.TracerReads, 1));
        Drain(world);
        Assert.All(world.Kernel.Tasks, t => Assert.Equal(KernelModel.State.Running, t.State));
        Assert.Empty(world.CoreHeard);
    }

    [Fact]
    [Trait("Spec", "S20")]
    public void MayResume_refuses_a_held_victim_a_member_of_a_stop_the_core_has_not_taken_and_a_parked_thread()
    {
        var table = new Table();
        var machine = new StopByOthers(table);
        Assert.False(machine.MayResume(7)); // a victim starts held
        machine.CoreResumes();
        Assert.True(machine.MayResume(7));

        table.AnyRunning = true;
        Assert.Equal([StopAction.Park(7)], machine.GroupStopReported(7));
        Assert.False(machine.MayResume(7));

        table.AnyRunning = false;
        Assert.Equal([StopAction.Park(8), StopAction.ReportStopped], machine.GroupStopReported(8));
        machine.Acknowledge();
        Assert.True(machine.MayResume(7));

        Assert.Equal([StopAction.DropExitKill(7), StopAction.DropExitKill(8), StopAction.Park(7), StopAction.Park(8)], machine.AwaitResume([7, 8]));
        machine.ListenReturned(7, succeeded: true);
        machine.ListenReturned(8, succeeded: false);
        Assert.False(machine.MayResume(7));
        Assert.Equal(StopByOthers.Membership.Stopped, machine.MembershipOf(8));
    }

    private static World Replay(int threads, params Move[] moves)
    {
        var world = new World(threads, signals: moves.Count(m => m.Kind is Kind.SigStop or Kind.SigCont));
        foreach (var move in moves)
        {
            Assert.Contains(move, world.Moves());
            world.Play(move);
        }

        return world;
    }

    /// <summary>Plays what is left to happen, first move first (the named races fix the interesting order already).</summary>
    private static void Drain(World world)
    {
        for (var guard = 0; guard < 1000 && !world.Quiescent; guard++)
        {
            world.Play(world.Moves().First(m => m.Kind is not (Kind.SigStop or Kind.SigCont)));
        }

        Assert.True(world.Quiescent);
        Assert.Empty(world.Violations);
    }

    [Fact]
    [Trait("Spec", "S20")]
    public void The_report_that_someone_elses_stop_is_over_holds_the_victim_until_the_core_resumes_it()
    {
        var machine = new StopByOthers(new Table());
        machine.CoreResumes();
        Assert.Equal([StopAction.Park(7), StopAction.ReportStopped], machine.GroupStopReported(7));
        Assert.False(machine.Held);
        machine.ListenReturned(7, succeeded: true);
        machine.Acknowledge();
        Assert.Empty(machine.AwaitResume([7]));

        Assert.Equal([StopAction.RestoreOptionsAll, StopAction.ReportResumed], machine.TrapStopReported(7));
        Assert.True(machine.Held);
        Assert.False(machine.MayResume(7));
        machine.CoreResumes();
        Assert.True(machine.MayResume(7));
    }

    private sealed class Table : StopByOthers.IThreadTable
    {
        public bool Collecting { get; set; }

        public bool AnyRunning { get; set; }
    }

    /// <summary>Depth-first over every interleaving; a state is a world rebuilt by replaying its path.</summary>
    private static readonly (int Threads, int Signals, int Exits, int Births)[] Configurations =
        [(1, 4, 0, 0), (2, 4, 0, 0), (3, 3, 0, 0), (2, 3, 1, 0), (2, 3, 0, 1), (3, 2, 1, 1)];

    private sealed class Explorer(int threads, int signals, int exits, int births, ISet<string>? covered = null)
    {
        private readonly HashSet<string> _seen = [];
        private readonly HashSet<string> _seenAfterLastSigcont = [];

        public string? Failure { get; private set; }

        public int QuiescentStates { get; private set; }

        public void Run() => Visit([]);

        private World Build(List<Move> path, int? finalSigcontAt)
        {
            var world = new World(threads, signals, exits, births, covered);
            for (var i = 0; i < path.Count; i++)
            {
                if (i == finalSigcontAt)
                {
                    world.AllowOneMoreSignal();
                }

                world.Play(path[i]);
            }

            return world;
        }

        /// <summary>
        /// One state and everything reachable from it. After the final SIGCONT (<paramref name="finalSigcontAt"/>, its
        /// index in the path) no signal is left to send, and each quiescent state must be a victim running again.
        /// </summary>
        private void Visit(List<Move> path, int? finalSigcontAt = null)
        {
            if (Failure is not null)
            {
                return;
            }

            var world = Build(path, finalSigcontAt);
            var afterFinalSigcont = finalSigcontAt is not null;
            if (!(afterFinalSigcont ? _seenAfterLastSigcont : _seen).Add(world.Signature))
            {
                return;
            }

            Failure = Check(world, path);
            if (Failure is null && world.Quiescent)
            {
                QuiescentStates++;
                Failure = CheckQuiescent(world, path, afterFinalSigcont);
                if (Failure is null && !afterFinalSigcont && world.Kernel.GroupStop && world.SignalsLeft == 0)
                {
                    // Liveness: someone sends the SIGCONT; whatever happens next, every thread runs again.
                    Visit([.. path, new Move(Kind.SigCont)], path.Count);
                }
            }

            foreach (var move in Failure is null ? world.Moves().ToList() : [])
            {
                Visit([.. path, move], finalSigcontAt);
            }
        }

        private static string? Check(World world, List<Move> path)
        {
            if (world.Violations.Count > 0)
            {
                return $"{world.Violations[0]} after {Describe(path)}";
            }

            return world.Kernel.Tasks.FirstOrDefault(t => t is { State: KernelModel.State.Listening, ExitKill: true }) is { } exitKill
                ? $"thread {exitKill.Tid} listens with EXITKILL on (a tracer crash would kill the victim) after {Describe(path)}"
                : null;
        }

        private static string? CheckQuiescent(World world, List<Move> path, bool afterFinalSigcont)
        {
            var live = world.Kernel.Tasks.Where(t => t.State != KernelModel.State.Gone).ToList();
            var stopped = world.CoreHeard.Count(s => s == "StoppedByOthers");
            var resumed = world.CoreHeard.Count(s => s == "ResumedByOthers");
            if (!world.Kernel.GroupStop)
            {
                if (live.FirstOrDefault(t => t.State != KernelModel.State.Running) is { } stuck)
                {
                    return $"thread {stuck.Tid} is left {stuck.State} though nobody stops the victim{(afterFinalSigcont ? " (after the final SIGCONT)" : "")}, after {Describe(path)}";
                }

                return stopped == resumed ? null : $"the core heard {string.Join(", ", world.CoreHeard)} for a victim that runs, after {Describe(path)}";
            }

            if (live.FirstOrDefault(t => t.State == KernelModel.State.Running) is { } runner)
            {
                return $"thread {runner.Tid} runs inside someone else's stop after {Describe(path)}";
            }

            if (stopped != resumed + 1 || world.Phase != StopByOthers.Phase.AwaitingResume)
            {
                return $"a stopped victim is not reported as such (core heard {string.Join(", ", world.CoreHeard)}, phase {world.Phase}) after {Describe(path)}";
            }

            return live.FirstOrDefault(t => t.ExitKill) is { } killable
                ? $"thread {killable.Tid} keeps EXITKILL in someone else's stop after {Describe(path)}"
                : null;
        }

        private static string Describe(List<Move> path) => string.Join(" ", path);
    }
}
