using ProcHex.Core.Tests.Ports;

namespace ProcHex.Core.Tests;

/// <summary>Client locks against the control loop (S21).</summary>
public sealed class LockTests
{
    [Fact]
    [Trait("Spec", "S21")]
    public async Task Locking_twice_is_an_error_not_a_hang_and_so_is_unlocking_an_unheld_lock()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var handle = await session.GrabAsync(700);

        using (var scope = await session.LockAsync(handle))
        {
            Assert.Throws<LockMisuseException>(() => { _ = session.LockAsync(handle); });
            scope.Unlock();
            Assert.Throws<LockMisuseException>(scope.Unlock);
        }

        Assert.Throws<LockMisuseException>(() => session.Unlock(handle));
        var again = await session.LockAsync(handle);
        session.Unlock(handle);
        again.Dispose(); // already unlocked through the session: disposing must not release twice
        using var third = await session.LockAsync(handle);
    }

    [Fact]
    [Trait("Spec", "S21")]
    public async Task A_held_lock_keeps_the_control_loop_from_handling_stops_until_unlocked()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var handle = await session.GrabAsync(700);
        var script = tracer.Last;
        session.Continue(handle);
        await script.WaitForWaitsAsync(1);
        var hits = 0;
        await session.SetBreakpointAsync(handle, PortScript.WorkAddress, _ => hits++);

        var scope = await session.LockAsync(handle);
        script.HitBreakpoint(PortScript.WorkAddress);
        await Task.Delay(100);
        Assert.Equal(0, hits);
        Assert.Equal(VictimState.Running, handle.State);

        scope.Dispose();
        await script.WaitForWaitsAsync(2);
        Assert.Equal(1, hits);
    }

    [Fact]
    [Trait("Spec", "S21")]
    public async Task Another_flow_waits_for_the_lock_instead_of_failing()
    {
        var tracer = new TracerScript();
        await using var session = tracer.Session();
        var handle = await session.GrabAsync(700);
        var locked = new TaskCompletionSource();
        var other = Task.Run(async () =>
        {
            await locked.Task;
            using var mine = await session.LockAsync(handle);
            return true;
        });
        var scope = await session.LockAsync(handle);
        locked.SetResult();
        await Task.Delay(50);
        Assert.False(other.IsCompleted);

        scope.Dispose();
        Assert.True(await other.WaitAsync(TimeSpan.FromSeconds(10)));
    }
}
