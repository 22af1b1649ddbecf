using System.Globalization;
using ProcHex.Ports;
using ProcHex.Backends.Linux.Tests.Support;

namespace ProcHex.Backends.Linux.Tests;

[Trait("Backend", "Linux")]
public sealed class GrabTests : LinuxTestBase
{
    [Fact]
    [Trait("Spec", "S3")]
    public async Task Grab_stops_and_release_leaves_it_running_untraced_with_text_restored()
    {
        using var sleeper = Untraced.Start("sleeper");
        TrackPid(sleeper.Id);
        var bias = await WaitForMapping(sleeper.Id, "sleeper");
        var work = bias + FixturePrograms.Symbol("sleeper", "work");
        var calls = bias + FixturePrograms.Symbol("sleeper", "calls");
        var original = Observe.Memory(sleeper.Id, work, 1)[0];

        var p = await Grab(sleeper.Id);
        Assert.Equal('t', Observe.State(sleeper.Id));
        Assert.NotEqual(0, Observe.TracerPid(sleeper.Id));
        var patch = p.PlantBreakpoint(work);
        p.Resume();
        for (var i = 0; i < 3; i++)
        {
            var e = await Next(p);
            Assert.Equal(StopReason.Breakpoint, e.Reason);
            Assert.Equal(work, e.ProgramCounter);
            p.StepOverBreakpoint(e.ThreadId, patch);
            p.Resume();
        }

        p.Release(ReleaseMode.Run);
        Assert.Equal(0, Observe.TracerPid(sleeper.Id));
        Assert.Equal(original, Observe.Memory(sleeper.Id, work, 1)[0]);
        var before = Observe.ReadLong(sleeper.Id, calls);
        Assert.True(await Observe.Eventually(() => Observe.ReadLong(sleeper.Id, calls) > before + 2), "the released process does not run");
        sleeper.Kill();
        await sleeper.WaitForExitAsync();
    }

    [Fact]
    [Trait("Spec", "S3")]
    public async Task Grab_takes_every_thread()
    {
        using var threads = Untraced.Start("threads", "1000000000000");
        TrackPid(threads.Id);
        Assert.True(await Observe.Eventually(() => Directory.GetDirectories($"/proc/{threads.Id}/task").Length == 5));
        var p = await Grab(threads.Id);
        foreach (var task in Directory.GetDirectories($"/proc/{threads.Id}/task"))
        {
            var tid = int.Parse(Path.GetFileName(task), CultureInfo.InvariantCulture);
            Assert.NotEqual(0, Observe.TracerPid(tid));
            Assert.Equal('t', Observe.State(tid));
        }

        p.Release(ReleaseMode.Run);
        Assert.Equal(0, Observe.TracerPid(threads.Id));
        threads.Kill();
        await threads.WaitForExitAsync();
    }

    [Fact]
    [Trait("Spec", "S3")]
    public async Task Threads_born_while_the_grab_attaches_are_seized_too()
    {
        // Two threads create and join threads without pause: every grab races thread births.
        using var churn = Untraced.Start("churn");
        TrackPid(churn.Id);
        var bias = await WaitForMapping(churn.Id, "churn");
        var calls = bias + FixturePrograms.Symbol("churn", "calls");
        for (var round = 0; round < 10; round++)
        {
            var p = await Grab(churn.Id);
            foreach (var tid in Tasks(churn.Id))
            {
                // A thread that finished its exit meanwhile has no state any more; every other one is ours and stopped.
                if (Observe.State(tid) is { } state)
                {
                    Assert.True(state == 't' && Observe.TracerPid(tid) != 0, $"round {round}: thread {tid} is '{state}', traced by {Observe.TracerPid(tid)}");
                }
            }

            var before = Observe.ReadLong(churn.Id, calls);
            p.Release(ReleaseMode.Run);
            Assert.True(await Observe.Eventually(() => Tasks(churn.Id).All(t => Observe.TracerPid(t) == 0)), $"round {round}: a thread is still traced");
            Assert.True(await Observe.Eventually(() => Observe.ReadLong(churn.Id, calls) > before + 100), $"round {round}: no new threads ran after the release");
        }

        churn.Kill();
        await churn.WaitForExitAsync();
    }

    /// <summary>
    /// The kernel reports a dying group's leader only once every other thread is reaped, and threads we seized are
    /// reaped by us. A grab that waited for the leader alone while the victim died blocked the owner thread, and
    /// every victim with it, for good. The leader here waits in vfork, which no PTRACE_INTERRUPT ends, so the grab
    /// is surely waiting for it when the victim is killed.
    /// </summary>
    [Fact]
    [Trait("Spec", "S3")]
    public async Task A_victim_killed_while_the_grab_waits_for_its_leader_fails_the_grab_without_blocking()
    {
        using var victim = await StartInVfork(childSeconds: 5);

        var grab = Tracer.GrabAsync(victim.Id, GrabAccess.Control, Timeout(20)).AsTask();
        Assert.True(await Observe.Eventually(() => Observe.TracerPid(victim.Id) != 0), "the grab did not seize the leader");
        await Task.Delay(100);
        Assert.Equal(0, Kill(victim.Id, 9));

        var error = await Assert.ThrowsAsync<GrabException>(() => grab);
        Assert.Equal(Interop.Errno.ESRCH, error.ErrorNumber);
        Assert.Contains("exited while being grabbed", error.Message, StringComparison.Ordinal);

        // The owner thread is free: it still serves other victims.
        await RunAnotherVictimToItsEnd();
    }

    /// <summary>
    /// A leader waiting in vfork stops only when its child execs or exits. The grab waits for that; the thread that
    /// traces every victim must not: another victim is created and run to its end meanwhile.
    /// </summary>
    [Fact]
    [Trait("Spec", "S3")]
    public async Task A_grab_held_up_by_a_leader_in_vfork_holds_up_no_other_victim()
    {
        using var victim = await StartInVfork(childSeconds: 3);

        var grab = Tracer.GrabAsync(victim.Id, GrabAccess.Control, Timeout(20)).AsTask();
        await RunAnotherVictimToItsEnd();
        Assert.False(grab.IsCompleted, "the grab was done before another victim could run: it held up the owner thread");

        // Once the child has exited the leader stops: the grab ends with every thread stopped and ours.
        var p = await grab;
        Assert.All(Tasks(victim.Id), tid => Assert.Equal('t', Observe.State(tid)));
        p.Release(ReleaseMode.Run);
        p.Dispose();
    }

    /// <summary>Given up before the leader could stop, the grab is let go as soon as it stops: nothing stays traced.</summary>
    [Fact]
    [Trait("Spec", "S3")]
    public async Task A_grab_given_up_while_the_leader_waits_in_vfork_lets_the_victim_go_once_it_stops()
    {
        using var victim = await StartInVfork(childSeconds: 2);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await Tracer.GrabAsync(victim.Id, GrabAccess.Control, Timeout(1)));
        Assert.True(
            await Observe.Eventually(() => Tasks(victim.Id).All(t => Observe.TracerPid(t) == 0), 10_000),
            "a thread is still traced after the vfork child exited");
        Assert.True(await Observe.Eventually(() => Observe.State(victim.Id) is 'S' or 'R' or 'Z' or null), $"state {Observe.State(victim.Id)}");
    }

    /// <summary>A vforkwait victim whose leader waits in vfork, its child exiting after <paramref name="childSeconds"/>.</summary>
    private async Task<Untraced> StartInVfork(int childSeconds)
    {
        var victim = Untraced.Start("vforkwait", childSeconds.ToString(CultureInfo.InvariantCulture));
        TrackPid(victim.Id);
        Assert.True(
            await Observe.Eventually(() => Tasks(victim.Id).Count() == 3 && Observe.State(victim.Id) == 'D'),
            $"the victim did not settle in vfork (state {Observe.State(victim.Id)}, {Tasks(victim.Id).Count()} threads)");
        return victim;
    }

    private async Task RunAnotherVictimToItsEnd()
    {
        var p = await Create("loop", "3");
        p.Resume();
        Assert.Equal(StopKind.Exited, (await Next(p)).Kind);
    }

    private static IEnumerable<int> Tasks(int pid)
    {
        try
        {
            return [.. Directory.GetDirectories($"/proc/{pid}/task").Select(d => int.Parse(Path.GetFileName(d), CultureInfo.InvariantCulture))];
        }
        catch (DirectoryNotFoundException)
        {
            return [];
        }
    }

    [Fact]
    [Trait("Spec", "S4")]
    public async Task Read_only_grab_neither_stops_nor_traces()
    {
        using var sleeper = Untraced.Start("sleeper");
        TrackPid(sleeper.Id);
        var bias = await WaitForMapping(sleeper.Id, "sleeper");
        var p = await Tracer.GrabAsync(sleeper.Id, GrabAccess.ReadOnly, Timeout());
        Assert.Equal(0, Observe.TracerPid(sleeper.Id));
        Assert.NotEqual('t', Observe.State(sleeper.Id));
        var buffer = new byte[8];
        Assert.Equal(8, p.ReadMemory(bias + FixturePrograms.Symbol("sleeper", "calls"), buffer));
        p.Release(ReleaseMode.Run);
        p.Dispose();
        sleeper.Kill();
        await sleeper.WaitForExitAsync();
    }

    [Fact]
    [Trait("Spec", "S4")]
    public async Task A_read_only_handle_lists_every_thread_with_its_pc_without_stopping_any()
    {
        using var threads = Untraced.Start("threads", "1000000000000");
        using var sleeper = Untraced.Start("sleeper");
        TrackPid(threads.Id);
        TrackPid(sleeper.Id);
        Assert.True(await Observe.Eventually(() => Directory.GetDirectories($"/proc/{threads.Id}/task").Length == 5));
        await WaitForMapping(sleeper.Id, "sleeper");
        await using var session = new ProcHexSession(Tracer);

        var busy = await session.GrabAsync(threads.Id, GrabMode.ReadOnly);
        var idle = await session.GrabAsync(sleeper.Id, GrabMode.ReadOnly);

        var listed = busy.Threads.Select(t => t.ThreadId).Order().ToArray();
        var tasks = Directory.GetDirectories($"/proc/{threads.Id}/task").Select(d => int.Parse(Path.GetFileName(d), CultureInfo.InvariantCulture)).Order().ToArray();
        Assert.Equal(tasks, listed);
        Assert.All(busy.Threads, t => Assert.Equal("threads", t.Name)); // comm: the program's name, as no thread renamed itself
        Assert.Equal(sleeper.Id, Assert.Single(idle.Threads).ThreadId);
        // It sleeps 10 ms between calls: caught asleep (not "running"), its PC is known and in an object.
        ThreadSnapshot sleeping = default;
        Assert.True(await Observe.Eventually(() => (sleeping = Assert.Single(idle.Threads)).ProgramCounter is not null));
        Assert.NotNull(idle.ResolveAddress(sleeping.ProgramCounter!.Value));
        Assert.Equal((0, 0), (Observe.TracerPid(threads.Id), Observe.TracerPid(sleeper.Id)));
        Assert.DoesNotContain(Observe.State(sleeper.Id) ?? '?', "tT");
        threads.Kill();
        sleeper.Kill();
        await Task.WhenAll(threads.WaitForExitAsync(), sleeper.WaitForExitAsync());
    }

    [Fact]
    [Trait("Spec", "S3")]
    public async Task Grab_failures_say_why()
    {
        Assert.Equal("no such process", (await Assert.ThrowsAsync<GrabException>(() => Grab(int.MaxValue))).Message);
        Assert.Equal("cannot grab our own process", (await Assert.ThrowsAsync<GrabException>(() => Grab(Environment.ProcessId))).Message);

        var traced = await Create("sleeper");
        var e = await Assert.ThrowsAsync<GrabException>(() => Grab(traced.Pid));
        Assert.StartsWith("already traced by pid ", e.Message, StringComparison.Ordinal);
        traced.Release(ReleaseMode.Kill);

        // A zombie: a child its parent never reaps.
        using var parent = Untraced.Start("zombie-parent");
        TrackPid(parent.Id);
        int zombie = 0;
        Assert.True(await Observe.Eventually(() =>
        {
            var children = File.ReadAllText($"/proc/{parent.Id}/task/{parent.Id}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries);
            zombie = children.Select(c => int.Parse(c, CultureInfo.InvariantCulture)).FirstOrDefault(c => Observe.State(c) == 'Z');
            return zombie != 0;
        }));
        Assert.Equal("process is a zombie", (await Assert.ThrowsAsync<GrabException>(() => Grab(zombie))).Message);

        // Our own child (a Process.Start child would have its stops stolen by the runtime): refused, not hung.
        using var own = System.Diagnostics.Process.Start(FixturePrograms.PathOf("sleeper"));
        TrackPid(own.Id);
        Assert.StartsWith("process is a child of the tracer itself", (await Assert.ThrowsAsync<GrabException>(() => Grab(own.Id))).Message, StringComparison.Ordinal);
        own.Kill();
        await own.WaitForExitAsync();
        parent.Kill();
        await parent.WaitForExitAsync();
    }

    internal static async Task<ulong> WaitForMapping(int pid, string program)
    {
        ulong bias = 0;
        Assert.True(await Observe.Eventually(() =>
        {
            try
            {
                bias = Observe.LoadBias(pid, FixturePrograms.PathOf(program));
                return Observe.MappedPathContaining(pid, "libc") is not null;
            }
            catch (InvalidOperationException)
            {
                return false;
            }
        }));
        await Task.Delay(50);
        return bias;
    }
}
