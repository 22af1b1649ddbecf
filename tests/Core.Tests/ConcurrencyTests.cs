using NSubstitute;
using ProcHex.Ports;
using ProcHex.Core.Tests.Ports;

namespace ProcHex.Core.Tests;

/// <summary>Client calls from many threads racing the control loop and each other.</summary>
public sealed class ConcurrencyTests
{
    [Fact]
    [Trait("Spec", "S21")]
    [Trait("Spec", "S14")]
    public async Task Breakpoints_set_and_removed_from_many_threads_while_the_loop_handles_hits_stay_consistent()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var handle = await session.GrabAsync(700);
        var script = tracer.Last;
        session.Continue(handle);
        await script.WaitForWaitsAsync(1);
        long handled = 0;

        var clients = Enumerable.Range(0, 8).Select(t => Task.Run(async () =>
        {
            for (var i = 0; i < 50; i++)
            {
                var address = 0x10000UL + (ulong)(t * 0x100 + i % 4);
                var bp = await session.SetBreakpointAsync(handle, address, _ => Interlocked.Increment(ref handled));
                script.HitBreakpoint(address);
                while (Volatile.Read(ref handled) >= 0)
                {
                    using (await session.LockAsync(handle))
                    {
                        Assert.True(bp.IsPlanted);
                        if (bp.Hits == 1)
                        {
                            break;
                        }
                    }

                    await Task.Delay(1);
                }

                await session.RemoveBreakpointAsync(bp);
            }
        })).ToArray();
        await Task.WhenAll(clients).WaitAsync(TimeSpan.FromSeconds(60));
        await script.WaitForWaitsAsync(1 + 400);

        // Every hit was handled exactly once by its own breakpoint, and every client breakpoint is gone again.
        using (await session.LockAsync(handle))
        {
            Assert.Equal(1, handle.Victim.Breakpoints.Count); // only main is left
        }

        Assert.Equal(400, handled);
        Assert.Equal(VictimState.Running, handle.State);
    }

    [Fact]
    [Trait("Spec", "S8")]
    [Trait("Spec", "S23")]
    public async Task Racing_releases_destroy_once_and_the_loser_gets_the_released_error()
    {
        for (var round = 0; round < 50; round++)
        {
            var tracer = new TracerScript();
            await using var session = tracer.Session();
            var handle = await session.GrabAsync(700);

            var releases = Enumerable.Range(0, 4).Select(_ => Task.Run(() => session.ReleaseAsync(handle))).ToArray();
            var outcomes = await Task.WhenAll(releases.Select(async r =>
            {
                try
                {
                    await r;
                    return true;
                }
                catch (InvalidHandleException)
                {
                    return false;
                }
            }));

            Assert.Equal(1, outcomes.Count(ok => ok));
            NSubstitute.Received.InOrder(() => tracer.Last.Process.Release(ReleaseMode.Run));
        }
    }

    [Fact]
    [Trait("Spec", "S9")]
    [Trait("Spec", "S23")]
    public async Task A_breakpoint_set_while_the_handle_is_being_released_is_refused_and_never_planted()
    {
        // Found on a real victim (HostileInputTests): a plant that won the victim lock after the control loop had
        // taken every trap out stayed in the text of the process we then detached from.
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var handle = await session.GrabAsync(700);
        session.Continue(handle);
        Task releasing;
        InvalidHandleException refused;
        using (await session.LockAsync(handle))
        {
            // The release asks the loop to quit; the loop cannot clean up while we hold the lock.
            releasing = session.ReleaseAsync(handle);
            refused = await Assert.ThrowsAsync<InvalidHandleException>(() => session.SetBreakpointAsync(handle, "a.out`work", _ => { }));
        }

        await releasing;
        Assert.Equal("pid 700: the process handle was released", refused.Message);
        tracer.Last.Process.DidNotReceive().PlantBreakpoint(PortScript.WorkAddress);
    }

    [Fact]
    [Trait("Spec", "S21")]
    public async Task Tasks_forked_from_one_flow_do_not_pass_for_each_other_as_the_lock_holder()
    {
        // Found on a real victim (HostileInputTests): sibling tasks inherit their parent's flow identity, so one
        // sibling's LockAsync took another's breakpoint operation for its own hold and failed as a double lock.
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var handle = await session.GrabAsync(700);
        session.Continue(handle);
        await session.SetBreakpointAsync(handle, PortScript.MainAddress + 1, _ => { }); // this flow now has an identity

        using var planting = new SemaphoreSlim(0);
        using var gate = new ManualResetEventSlim();
        tracer.Last.Process.PlantBreakpoint(PortScript.WorkAddress).Returns(_ =>
        {
            planting.Release();
            gate.Wait();
            return new BreakpointPatch(PortScript.WorkAddress, 0x55, 1);
        });

        var plant = Task.Run(() => session.SetBreakpointAsync(handle, PortScript.WorkAddress, _ => { }));
        Task<VictimLockScope> locking;
        try
        {
            Assert.True(await planting.WaitAsync(TimeSpan.FromSeconds(10)));
            locking = Task.Run(() => session.LockAsync(handle));
            await Task.Delay(50);
            Assert.False(locking.IsCompleted, $"the lock was granted (or refused: {locking.Exception?.InnerException?.Message}) while a sibling's operation held it");
        }
        finally
        {
            gate.Set();
        }

        Assert.True((await plant).IsPlanted);
        (await locking).Dispose(); // granted once the sibling's operation was done, not refused as a double lock
    }

    [Fact]
    [Trait("Spec", "S5")]
    public async Task Concurrent_grabs_of_one_pid_grab_it_once_and_share_the_handle()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();

        var grabs = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => session.GrabAsync(900, GrabMode.ReadOnly))));

        Assert.All(grabs, h => Assert.Same(grabs[0], h));
        Assert.Equal(8, grabs[0].Victim.References);
        Assert.Single(tracer.Processes);
    }
}
