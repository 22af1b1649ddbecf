using System.Globalization;
using ProcHex.Ports;
using ProcHex.Backends.Linux.Tests.Support;

namespace ProcHex.Backends.Linux.Tests;

/// <summary>
/// Issue 17 item 3: a process is its pid and its start time. A handle whose process ended and whose pid now names
/// another process is stale: it refuses to read the newcomer, and a grab asks for the process it identified. The
/// pid is reused for certain with the pidreuse fixture (clone3 with set_tid, root only).
/// </summary>
[Trait("Backend", "Linux")]
[Trait("Privilege", "Root")] // clone3 with set_tid needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN
public sealed class PidReuseTests : LinuxTestBase
{
    [Fact]
    public async Task A_read_only_handle_whose_pid_was_reused_is_stale_and_refuses_to_read_the_newcomer()
    {
        var (first, pid) = await StartSleeperAsync();
        await using var session = new ProcHexSession(Tracer);
        var handle = await session.GrabAsync(pid, GrabMode.ReadOnly);
        var started = handle.StartTime;
        Assert.Equal(Observe.StartTime(pid), started);
        Assert.NotEmpty(handle.Objects);

        await ReplaceAsync(first, pid, "sleeper");

        Assert.NotEqual(started, Observe.StartTime(pid));
        var stale = Assert.Throws<StaleHandleException>(() => handle.Objects);
        Assert.Equal($"pid {pid}: the process this handle was for has ended and pid {pid} now names another process; grab it again", stale.Message);
        Assert.Throws<StaleHandleException>(() => handle.Threads);
        Assert.Throws<StaleHandleException>(() => handle.ReadMemory(0x1000, new byte[8]));
        Assert.Throws<StaleHandleException>(() => handle.ResolveAddress(0x1000));
        Assert.Throws<StaleHandleException>(() => handle.LookupSymbol("work"));

        // The cache does not hand the stale handle out again: a grab of the pid holds the newcomer.
        var fresh = await session.GrabAsync(pid, GrabMode.ReadOnly);
        Assert.NotSame(handle, fresh);
        Assert.Equal(Observe.StartTime(pid), fresh.StartTime);
        Assert.NotEmpty(fresh.Objects);
        await session.ReleaseAsync(fresh);
        await session.ReleaseAsync(handle);
        _ = Kill(pid, 9);
    }

    [Fact]
    public async Task A_grab_of_an_identified_process_refuses_the_newcomer_behind_its_reused_pid_and_leaves_it_untouched()
    {
        var (first, pid) = await StartSleeperAsync();
        await using var session = new ProcHexSession(Tracer);
        var identified = session.StartTimeOf(pid)!.Value;

        await ReplaceAsync(first, pid, "sleeper");

        var ex = await Assert.ThrowsAsync<GrabFailedException>(() => session.GrabAsync(pid, identified, GrabMode.Control));
        Assert.Equal($"failed to grab pid {pid}: the process it named has ended and pid {pid} now names another process", ex.Message);
        Assert.Equal(TracerErrorKind.Gone, ex.Kind);
        Assert.Equal(0, Observe.TracerPid(pid));
        Assert.Empty(session.Handles);

        // The newcomer, identified afresh, is grabbed as usual.
        var handle = await session.GrabAsync(pid, session.StartTimeOf(pid)!.Value, GrabMode.Control);
        Assert.NotEqual(0, Observe.TracerPid(pid));
        await session.ReleaseAsync(handle);
        _ = Kill(pid, 9);
    }

    [Fact]
    public async Task A_control_handle_whose_process_died_goes_stale_once_its_pid_is_reused()
    {
        var (first, pid) = await StartSleeperAsync();
        await using var session = new ProcHexSession(Tracer);
        var handle = await session.GrabAsync(pid, GrabMode.Control);
        session.Continue(handle);

        _ = Kill(pid, 9);
        Assert.True(await Observe.Eventually(() => handle.State == VictimState.Undead), $"state {handle.State}");
        await ReplaceAsync(first, pid, "sleeper");

        Assert.Throws<StaleHandleException>(() => handle.Objects);
        await session.ReleaseAsync(handle);
        Assert.Equal(0, Observe.TracerPid(pid));
        Assert.NotNull(Observe.State(pid));
        _ = Kill(pid, 9);
    }

    /// <summary>The sleeper fixture, untraced, tracked for the after-test checks, once its image is mapped.</summary>
    private async Task<(Untraced Victim, int Pid)> StartSleeperAsync()
    {
        var victim = Untraced.Start("sleeper");
        TrackPid(victim.Id);
        await GrabTests.WaitForMapping(victim.Id, "sleeper");
        return (victim, victim.Id);
    }

    /// <summary>Kills <paramref name="victim"/>, waits until init has reaped it, and starts a fixture as the same pid.</summary>
    private static async Task ReplaceAsync(Untraced victim, int pid, string program)
    {
        victim.Kill();
        Assert.True(await Observe.Eventually(() => Observe.State(pid) is null), $"pid {pid} was not reaped");
        var output = FixturePrograms.Run(FixturePrograms.PathOf("pidreuse"), pid.ToString(CultureInfo.InvariantCulture), FixturePrograms.PathOf(program));
        Assert.Equal(pid, int.Parse(output.Trim(), CultureInfo.InvariantCulture));
        await GrabTests.WaitForMapping(pid, program);
    }
}
