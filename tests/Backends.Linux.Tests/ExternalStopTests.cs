using ProcHex.PortContract;
using ProcHex.Ports;
using ProcHex.Backends.Linux.Tests.Support;

namespace ProcHex.Backends.Linux.Tests;

[Trait("Backend", "Linux")]
[Trait("Timing", "Race")] // races real signals and threads: .ci/run runs this class again in a loop
public sealed class ExternalStopTests : LinuxTestBase
{
    private const int SIGSTOP = 19;
    private const int SIGCONT = 18;

    [Fact]
    [Trait("Spec", "S20")]
    public async Task A_stop_by_someone_else_is_waited_out_without_polling()
    {
        var p = await Create("sleeper");
        var calls = Observe.LoadBias(p.Pid, FixturePrograms.PathOf("sleeper")) + FixturePrograms.Symbol("sleeper", "calls");
        p.Resume();
        await Task.Delay(50);

        // Stopped and continued by another process: kill(1).
        _ = FixturePrograms.Run("/bin/kill", "-STOP", p.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(StopReason.StoppedByOthers, (await Next(p)).Reason);
        p.AwaitExternalResume();

        // Nothing happens until somebody else continues it, and the wait is a pending task, not a loop: the
        // victim is in PTRACE_LISTEN and the owner thread sits in one waitpid that does not return meanwhile.
        var wait = p.WaitForStopAsync(Timeout()).AsTask();
        var waitsBefore = OwnerThread.Shared.WaitReturns;
        await Task.Delay(200);
        Assert.False(wait.IsCompleted);
        var frozen = Observe.ReadLong(p.Pid, calls);
        await Task.Delay(100);
        Assert.Equal(frozen, Observe.ReadLong(p.Pid, calls));
        Assert.Equal(waitsBefore, OwnerThread.Shared.WaitReturns);
        Assert.Equal('t', Observe.State(p.Pid));

        _ = FixturePrograms.Run("/bin/kill", "-CONT", p.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(StopReason.ResumedByOthers, (await wait).Reason);
        p.Resume();
        Assert.True(await Observe.Eventually(() => Observe.ReadLong(p.Pid, calls) > frozen + 2), "it does not run after SIGCONT");

        p.RequestStop();
        Assert.Equal(StopReason.Interrupted, (await Next(p)).Reason);
        p.Release(ReleaseMode.Kill);
    }

    [Fact]
    [Trait("Spec", "S20")]
    public async Task A_program_that_stops_itself_is_resumed_by_someone_else()
    {
        var p = await Create("selfstop");
        p.Resume();
        Assert.Equal(StopReason.StoppedByOthers, (await Next(p)).Reason);
        p.AwaitExternalResume();
        Assert.Equal(0, Kill(p.Pid, SIGCONT));
        Assert.Equal(StopReason.ResumedByOthers, (await Next(p)).Reason);
        Assert.Equal(ExitStatus.FromCode(0), (await new PortDriver(p).RunToEnd()).Exit);
    }

    [Fact]
    [Trait("Spec", "S9")]
    public async Task Hang_release_leaves_a_victim_stopped_by_others_stopped_and_untraced()
    {
        var p = await Create("sleeper");
        p.Resume();
        await Task.Delay(20);
        Assert.Equal(0, Kill(p.Pid, SIGSTOP));
        Assert.Equal(StopReason.StoppedByOthers, (await Next(p)).Reason);
        p.AwaitExternalResume();
        var wait = p.WaitForStopAsync(Timeout()).AsTask();

        // Teardown wakes the waiting control loop (S9), then lets go leaving the victim stopped.
        p.RequestStop();
        Assert.Equal(StopReason.Interrupted, (await wait).Reason);
        p.Release(ReleaseMode.Hang);
        LeftStopped.Add(p.Pid);
        Assert.Equal(0, Observe.TracerPid(p.Pid));
        Assert.Equal('T', Observe.State(p.Pid));
        await Task.Delay(100);
        Assert.Equal('T', Observe.State(p.Pid));
        Assert.Equal(0, Kill(p.Pid, 9));
    }

    [Fact]
    [Trait("Spec", "S9")]
    public async Task Hang_release_lets_a_victim_run_when_someone_continued_it_after_its_threads_reported_the_stop()
    {
        var p = await Create("sleeper");
        var calls = Observe.LoadBias(p.Pid, FixturePrograms.PathOf("sleeper")) + FixturePrograms.Symbol("sleeper", "calls");
        p.Resume();
        await Task.Delay(20);
        Assert.Equal(0, Kill(p.Pid, SIGSTOP));
        Assert.Equal(StopReason.StoppedByOthers, (await Next(p)).Reason);
        p.AwaitExternalResume();
        var wait = p.WaitForStopAsync(Timeout()).AsTask();
        p.RequestStop();
        Assert.Equal(StopReason.Interrupted, (await wait).Reason);

        // The stop-all took the thread out of PTRACE_LISTEN and it reported the group-stop again: in that plain
        // trap-stop a SIGCONT leaves it only a notice, which the core never hears of. The core chose Hang from the
        // last report it took; their SIGCONT came after it and is the last word (S20: chaos seed 3, linux
        // simulation seeds 166, 191, 37519). Hang must not stop the victim again.
        Assert.Equal(0, Kill(p.Pid, SIGCONT));
        p.Release(ReleaseMode.Hang);
        Assert.Equal(0, Observe.TracerPid(p.Pid));
        var before = Observe.ReadLong(p.Pid, calls);
        Assert.True(await Observe.Eventually(() => Observe.ReadLong(p.Pid, calls) != before), $"the victim does not run after their SIGCONT (state {Observe.State(p.Pid)})");
        Assert.Equal(0, Kill(p.Pid, 9));
    }

    [Fact]
    [Trait("Spec", "S9")]
    public async Task Run_release_of_a_running_victim_stops_it_restores_text_and_lets_it_run()
    {
        var p = await Create("sleeper");
        var work = BreakpointTests.WorkAddress(p, "sleeper");
        var calls = Observe.LoadBias(p.Pid, FixturePrograms.PathOf("sleeper")) + FixturePrograms.Symbol("sleeper", "calls");
        var original = new byte[1];
        p.ReadMemory(work, original);
        _ = p.PlantBreakpoint(work);
        p.Resume();
        var hit = await Next(p);
        Assert.Equal(StopReason.Breakpoint, hit.Reason);
        p.Release(ReleaseMode.Run);
        Assert.Equal(0, Observe.TracerPid(p.Pid));
        Assert.Equal(original[0], Observe.Memory(p.Pid, work, 1)[0]);
        var before = Observe.ReadLong(p.Pid, calls);
        Assert.True(await Observe.Eventually(() => Observe.ReadLong(p.Pid, calls) > before + 2), "the released victim does not run");
        Assert.Equal(0, Kill(p.Pid, 9));
    }

    [Fact]
    [Trait("Spec", "S20")]
    public async Task A_multithreaded_victim_hitting_breakpoints_is_stopped_and_continued_by_others()
    {
        var p = await Create("threads", "1000000000000");
        var work = BreakpointTests.WorkAddress(p, "threads");
        var calls = Observe.LoadBias(p.Pid, FixturePrograms.PathOf("threads")) + FixturePrograms.Symbol("threads", "calls");
        var patch = p.PlantBreakpoint(work);
        p.Resume();
        var hits = 0;
        StopEvent e;
        while (true)
        {
            e = await Next(p);
            if (e.Reason == StopReason.StoppedByOthers)
            {
                break;
            }

            Assert.Equal(StopReason.Breakpoint, e.Reason);
            if (++hits == 50)
            {
                Assert.Equal(0, Kill(p.Pid, SIGSTOP));
            }

            p.StepOverBreakpoint(e.ThreadId, patch);
            p.Resume();
        }

        p.AwaitExternalResume();
        var wait = p.WaitForStopAsync(Timeout()).AsTask();
        var frozen = Observe.ReadLong(p.Pid, calls);
        await Task.Delay(200);
        Assert.False(wait.IsCompleted);
        Assert.Equal(frozen, Observe.ReadLong(p.Pid, calls));

        Assert.Equal(0, Kill(p.Pid, SIGCONT));
        Assert.Equal(StopReason.ResumedByOthers, (await wait).Reason);
        p.Resume();
        for (var i = 0; i < 20; i++)
        {
            e = await Next(p);
            Assert.Equal(StopReason.Breakpoint, e.Reason);
            p.StepOverBreakpoint(e.ThreadId, patch);
            p.Resume();
        }

        p.RequestStop();
        p.Release(ReleaseMode.Kill);
    }

    [Fact]
    [Trait("Spec", "S20")]
    public async Task Grabbing_a_process_stopped_by_others_reports_it_and_waits_for_them()
    {
        using var sleeper = Untraced.Start("sleeper");
        TrackPid(sleeper.Id);
        await GrabTests.WaitForMapping(sleeper.Id, "sleeper");
        Assert.Equal(0, Kill(sleeper.Id, SIGSTOP));
        Assert.True(await Observe.Eventually(() => Observe.State(sleeper.Id) == 'T'));

        var p = await Grab(sleeper.Id);
        p.Resume();
        Assert.Equal(StopReason.StoppedByOthers, (await Next(p)).Reason);
        p.AwaitExternalResume();
        var wait = p.WaitForStopAsync(Timeout()).AsTask();
        await Task.Delay(100);
        Assert.False(wait.IsCompleted);
        Assert.Equal(0, Kill(sleeper.Id, SIGCONT));
        Assert.Equal(StopReason.ResumedByOthers, (await wait).Reason);
        p.Release(ReleaseMode.Run);
        Assert.Equal(0, Observe.TracerPid(sleeper.Id));
        Assert.True(await Observe.Eventually(() => Observe.State(sleeper.Id) is 'S' or 'R'));
        sleeper.Kill();
    }

    [Fact]
    [Trait("Spec", "S20")]
    public async Task A_SIGCONT_right_behind_a_SIGSTOP_lets_a_thread_churning_victim_run_again()
    {
        // Chaos seed 11: threads are born and exit all the time, so a SIGCONT often lands before every thread has
        // reported the group-stop (or after one of them exited instead). The threads that did report must not be
        // left in their stop, waiting for a report to the core that never comes.
        var p = await Create("churn");
        var calls = Observe.LoadBias(p.Pid, FixturePrograms.PathOf("churn")) + FixturePrograms.Symbol("churn", "calls");
        using var stopDriving = new CancellationTokenSource();
        var driver = AnswerLikeTheControlLoop(p, stopDriving.Token);
        p.Resume();
        for (var i = 0; i < 600; i++)
        {
            Assert.Equal(0, Kill(p.Pid, SIGSTOP));
            Thread.SpinWait(i % 7 * 200);
            Assert.Equal(0, Kill(p.Pid, SIGCONT));
            await Task.Delay(i % 4);
        }

        var before = Observe.ReadLong(p.Pid, calls);
        Assert.True(
            await Observe.Eventually(() => Observe.ReadLong(p.Pid, calls) > before + 10),
            $"the victim does not run after the last SIGCONT (state {Observe.State(p.Pid)})");
        Assert.Empty(await Observe.StuckThreads(p.Pid));

        await stopDriving.CancelAsync();
        await driver;
        p.RequestStop();
        p.Release(ReleaseMode.Kill);
    }

    [Fact]
    [Trait("Spec", "S20")]
    [Trait("Spec", "S4")]
    public async Task Grabs_racing_SIGSTOP_and_SIGCONT_from_outside_leave_the_victim_running()
    {
        // The stops the grab collects after its PTRACE_INTERRUPT may be group-stops, or notices of a SIGCONT: each
        // grab must still end in a victim that runs, untraced, once the signals stop.
        using var churn = Untraced.Start("churn");
        TrackPid(churn.Id);
        var bias = await GrabTests.WaitForMapping(churn.Id, "churn");
        var calls = bias + FixturePrograms.Symbol("churn", "calls");
        using var stopSignalling = new CancellationTokenSource();
        var signaller = Task.Run(async () =>
        {
            for (var i = 0; !stopSignalling.IsCancellationRequested; i++)
            {
                _ = Kill(churn.Id, SIGSTOP);
                Thread.SpinWait(i % 5 * 300);
                _ = Kill(churn.Id, SIGCONT);
                await Task.Delay(i % 3);
            }
        });

        for (var round = 0; round < 10; round++)
        {
            var p = await Tracer.GrabAsync(churn.Id, GrabAccess.Control, Timeout());
            using var stopDriving = new CancellationTokenSource();
            var driver = AnswerLikeTheControlLoop(p, stopDriving.Token);
            p.Resume();
            await Task.Delay(30);
            await stopDriving.CancelAsync();
            await driver;
            p.RequestStop();
            p.Release(ReleaseMode.Run);
            p.Dispose();
        }

        await stopSignalling.CancelAsync();
        await signaller;
        _ = Kill(churn.Id, SIGCONT);
        Assert.Equal(0, Observe.TracerPid(churn.Id));
        Assert.Empty(await Observe.StuckThreads(churn.Id));
        var before = Observe.ReadLong(churn.Id, calls);
        Assert.True(
            await Observe.Eventually(() => Observe.ReadLong(churn.Id, calls) > before + 10),
            $"the victim does not run after the last grab (state {Observe.State(churn.Id)})");
    }

    [Fact]
    [Trait("Spec", "S20")]
    [Trait("Spec", "S9")]
    public async Task A_stop_by_others_the_core_did_not_hear_of_outlives_a_run_release()
    {
        // Chaos seed 15: someone else stopped a victim held by a handle without a control loop (the core never hears
        // of it); the release (Run, since the core did not know) used to send SIGCONT when it found the detached
        // victim stopped, ending a stop that was not ours. Whether it found it depends on how fast the detached
        // victim stops (the chaos run's load made it likely; an idle machine rarely), so: rounds, both ways in turn,
        // the SIGSTOP pending while held and the group-stop complete before the release.
        using var sleeper = Untraced.Start("sleeper");
        TrackPid(sleeper.Id);
        LeftStopped.Add(sleeper.Id);
        await GrabTests.WaitForMapping(sleeper.Id, "sleeper");
        for (var round = 0; round < 15; round++)
        {
            var p = await Tracer.GrabAsync(sleeper.Id, GrabAccess.Control, Timeout());
            if (round % 2 == 0)
            {
                Assert.Equal(0, Kill(sleeper.Id, SIGSTOP));
                await Task.Delay(5);
            }
            else
            {
                p.Resume();
                Assert.Equal(0, Kill(sleeper.Id, SIGSTOP));
                Assert.Equal(StopReason.StoppedByOthers, (await Next(p)).Reason);
            }

            p.Release(ReleaseMode.Run);
            p.Dispose();
            Assert.Equal(0, Observe.TracerPid(sleeper.Id));
            Assert.True(await Observe.Eventually(() => Observe.State(sleeper.Id) == 'T'), $"round {round}: state {Observe.State(sleeper.Id)}");
            await Task.Delay(30);
            Assert.Equal('T', Observe.State(sleeper.Id));

            Assert.Equal(0, Kill(sleeper.Id, SIGCONT));
            Assert.True(await Observe.Eventually(() => Observe.State(sleeper.Id) is 'S' or 'R'), $"round {round}: SIGCONT does not continue it");
        }

        sleeper.Kill();
    }

    /// <summary>
    /// Like BreakpointTests' release test, with someone else's SIGSTOP landing as the threads run into the trap: a
    /// thread can then enter the group-stop (or our interrupt) with the SIGTRAP still queued. The release must take
    /// that trap while the thread is ours and still leave the victim in the other party's stop.
    /// </summary>
    [Fact]
    [Trait("Spec", "S20")]
    [Trait("Spec", "S16")]
    public async Task Releasing_a_victim_stopped_by_others_as_its_threads_hit_a_breakpoint_leaves_it_stopped_and_alive()
    {
        using var victim = await StartBusyThreads();
        for (var round = 0; round < 60; round++)
        {
            var p = await Tracer.GrabAsync(victim.Id, GrabAccess.Control, Timeout());
            p.PlantBreakpoint(BreakpointTests.WorkAddress(p, "threads"));
            p.Resume();
            Assert.Equal(0, Kill(victim.Id, SIGSTOP));
            p.RequestStop();
            p.Release(ReleaseMode.Run);
            p.Dispose();
            Assert.True(
                await Observe.Eventually(() => victim.Ending is not null || Observe.State(victim.Id) == 'T'),
                $"round {round}: state {Observe.State(victim.Id)}, not in the SIGSTOP's stop");
            Assert.True(victim.Ending is null, $"round {round}: the victim died: {victim.Ending}");
            Assert.Empty(Observe.TextDifferences(victim.Id));

            Assert.Equal(0, Kill(victim.Id, SIGCONT));
            Assert.True(
                await Observe.Eventually(() => victim.Ending is not null || Observe.State(victim.Id) is 'R' or 'S'),
                $"round {round}: SIGCONT does not continue it (state {Observe.State(victim.Id)})");
            Assert.True(victim.Ending is null, $"round {round}: the victim died after SIGCONT: {victim.Ending}");
        }

        await Task.Delay(100);
        Assert.True(victim.Ending is null, $"the victim died after the last round: {victim.Ending}");
    }

    /// <summary>Answers stops the way the core does for S20: hold for others, resume on everything else.</summary>
    private static async Task AnswerLikeTheControlLoop(ITracedProcess p, CancellationToken token)
    {
        while (true)
        {
            StopEvent e;
            try
            {
                e = await p.WaitForStopAsync(token);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            Assert.Equal(StopKind.Stopped, e.Kind);
            if (e.Reason == StopReason.StoppedByOthers)
            {
                p.AwaitExternalResume();
            }
            else
            {
                p.Resume();
            }
        }
    }
}
