using System.Globalization;
using ProcHex.Ports;
using ProcHex.Backends.Linux.Tests.Support;

namespace ProcHex.Backends.Linux.Tests;

/// <summary>Ordinary, stripped system binaries as victims: created, probed in libc, forking, grabbed.</summary>
[Trait("Backend", "Linux")]
public sealed class SystemBinaryTests : LinuxTestBase
{
    private static ProcHexSession NewSession() => new(new LinuxTracer(TestLog.Factory), new ProcHexOptions(), TestLog.Factory);

    [Fact]
    [Trait("Spec", "S14")]
    [Trait("Spec", "S17")]
    public async Task Ls_opens_exactly_the_directories_it_is_given()
    {
        await using var session = NewSession();
        var handle = await session.CreateAsync("/bin/ls", ["ls", "/", "/usr", "/proc/self"], new CreateOptions { StopAt = Rendezvous.Postinit });
        TrackPid(handle.Pid);
        var opened = 0;
        await session.SetBreakpointAsync(handle, "libc.so.6`opendir", _ => opened++);
        session.Continue(handle);

        var note = await session.WaitForNotificationAsync(TimeSpan.FromSeconds(30));

        Assert.Equal((NotificationKind.Exited, 0), (note!.Kind, note.Exit!.Value.Code));
        Assert.Equal(3, opened);
    }

    [Fact]
    [Trait("Spec", "S13")]
    public async Task A_shell_with_a_breakpoint_in_libc_forks_and_execs_children_that_all_run_to_completion()
    {
        await using var session = NewSession();

        // set -e: a child killed by a SIGTRAP of ours would make the shell exit non-zero.
        var handle = await session.CreateAsync("/bin/sh", ["sh", "-ec", "for i in 1 2 3 4 5; do /bin/true; done; /bin/true | /bin/cat"], new CreateOptions { StopAt = Rendezvous.Postinit });
        TrackPid(handle.Pid);
        var hits = 0;
        await session.SetBreakpointAsync(handle, "libc.so.6`malloc", _ => hits++);
        var milestones = new List<MilestoneKind>();
        session.MilestoneReached = m => milestones.Add(m.Kind);
        session.Continue(handle);

        var note = await session.WaitForNotificationAsync(TimeSpan.FromSeconds(30));

        Assert.Equal((NotificationKind.Exited, 0), (note!.Kind, note.Exit!.Value.Code));
        Assert.True(hits > 0, "malloc was never hit");
        Assert.True(milestones.Count(m => m is MilestoneKind.ForkFollowed or MilestoneKind.VforkDone) >= 6, string.Join(",", milestones));
    }

    [Fact]
    [Trait("Spec", "S3")]
    [Trait("Spec", "S9")]
    public async Task A_grabbed_sleep_is_read_and_left_sleeping_untraced()
    {
        var pid = int.Parse(FixturePrograms.Run("/bin/sh", "-c", "/bin/sleep 60 </dev/null >/dev/null 2>&1 & echo $!").Trim(), CultureInfo.InvariantCulture);
        TrackPid(pid);
        Assert.True(await Observe.Eventually(() => Observe.MappedPathContaining(pid, "libc") is not null && Observe.Exe(pid).EndsWith("sleep", StringComparison.Ordinal)));

        var p = await Grab(pid);
        Assert.True(p.Symbols.TryLookup("libc.so.6", "clock_nanosleep", out var nanosleep));
        Assert.True(p.Symbols.TryResolve(nanosleep, out var where));
        Assert.Equal("libc.so.6", where.ObjectName);
        var patch = p.PlantBreakpoint(nanosleep);
        Assert.Equal(0xCC, Observe.Memory(pid, nanosleep, 1)[0]);
        p.Release(ReleaseMode.Run);

        Assert.Equal((byte)patch.OriginalBytes, Observe.Memory(pid, nanosleep, 1)[0]);
        Assert.Equal(0, Observe.TracerPid(pid));
        Assert.True(await Observe.Eventually(() => Observe.State(pid) == 'S'));
        Assert.Equal(0, Kill(pid, 9));
    }
}
