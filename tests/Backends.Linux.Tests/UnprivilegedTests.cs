using System.Globalization;
using ProcHex.PortContract;
using ProcHex.Ports;
using ProcHex.Backends.Linux.Tests.Support;

namespace ProcHex.Backends.Linux.Tests;

/// <summary>
/// What an unprivileged tracer meets (issue 3, deliverables 3 and 7), with a real unprivileged tracer: as root, an
/// owner thread dropped to nobody (see <see cref="UnprivilegedOwner"/>); as anyone else (the unprivileged CI pass,
/// issue 8), the tests' own tracer. The tests that need root say so with the trait Privilege=Root; the ones an
/// ordinary user runs as that user are in <see cref="UnprivilegedIdentityTests"/>.
/// </summary>
[Trait("Backend", "Linux")]
public sealed class UnprivilegedTests : LinuxTestBase
{
    /// <summary>For the tests that run as root and as anyone else: an unprivileged tracer either way.</summary>
    private IProcessTracer Unprivileged => Privilege.IsRoot ? UnprivilegedOwner.Tracer : Tracer;

    /// <summary>A copy of the loop fixture with <paramref name="mode"/>, owned by whoever runs the tests.</summary>
    private static string CopyOfLoop(string name, UnixFileMode mode)
    {
        var dir = Path.Combine(FixturePrograms.Dir, $"modes-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        var file = Path.Combine(dir, name);
        File.Copy(FixturePrograms.PathOf("loop"), file);
        File.SetUnixFileMode(file, mode);
        return file;
    }

    private const UnixFileMode ExecuteForAll = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
    private const UnixFileMode ReadForAll = UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    private Task<ITracedProcess> CreateUnprivileged(string file, params string[] argv) => CreateWith(Unprivileged, file, argv);

    private async Task<ITracedProcess> CreateWith(IProcessTracer tracer, string file, params string[] argv)
    {
        var p = await tracer.CreateAsync(new ProcessStartRequest(file, argv), Timeout());
        Track(p);
        return p;
    }

    [Fact]
    [Trait("Spec", "S3")]
    [Trait("Issue", "22")]
    [Trait("Privilege", "Root")] // the other user is this test process's own (root); only root can drop a thread to nobody
    public async Task Grabbing_a_process_of_another_user_names_the_permission_it_needs()
    {
        using var sleeper = Untraced.Start("sleeper");
        TrackPid(sleeper.Id);
        await GrabTests.WaitForMapping(sleeper.Id, "sleeper");
        Assert.NotEqual(UnprivilegedOwner.Nobody, Observe.Uid(sleeper.Id));

        var e = await Assert.ThrowsAsync<GrabException>(async () => await UnprivilegedOwner.Tracer.GrabAsync(sleeper.Id, GrabAccess.Control, Timeout()));

        Assert.Equal($"permission denied: pid {sleeper.Id} belongs to uid 0, not to this tracer (uid {UnprivilegedOwner.Nobody}, which lacks CAP_SYS_PTRACE)", e.Message);
        Assert.Equal(GrabRefusalKind.AnotherUser, e.Refusal!.Kind); // issue 22 item 3
        Assert.Equal(0, Observe.TracerPid(sleeper.Id));
        Assert.NotEqual('t', Observe.State(sleeper.Id));
    }

    [Fact]
    [Trait("Spec", "S13")]
    [Trait("Privilege", "Root")] // needs a program set-uid to another user (root), which only root can make
    public async Task An_exec_of_a_set_id_program_by_an_unprivileged_tracer_runs_it_unprivileged_and_keeps_control()
    {
        // Linux never lets a set-id program gain privileges under an unprivileged tracer: it runs with the old ids
        // and stays fully traced. So this is not a loss of control; the new image is planted and counted.
        var setuid = CopyOfLoop("loop-setuid", UnixFileMode.SetUser | ExecuteForAll | ReadForAll | UnixFileMode.UserWrite);
        var p = await CreateWith(UnprivilegedOwner.Tracer, FixturePrograms.PathOf("execv"), "execv", setuid, "loop-setuid", "25");
        Assert.Equal(UnprivilegedOwner.Nobody, Observe.Uid(p.Pid));
        var runner = new PortDriver(p)
        {
            OnExec = r =>
            {
                Assert.Equal(UnprivilegedOwner.Nobody, Observe.EffectiveUid(p.Pid));
                r.Plant(Observe.LoadBias(p.Pid, setuid) + FixturePrograms.Symbol("loop", "work"));
            },
        };
        runner.Plant(BreakpointTests.WorkAddress(p, "execv"));

        var end = await runner.RunToEnd();

        Assert.Equal(ExitStatus.FromCode(0), end.Exit);
        Assert.Equal(26, runner.Hits);
        Assert.Contains(StopReason.ExecDone, runner.Reasons);
    }

    [Theory]
    [Trait("Spec", "S2")]
    [Trait("Spec", "S13")]
    [InlineData("set-id, execute-only", UnixFileMode.SetUser)]
    [InlineData("execute-only", UnixFileMode.None)]
    public async Task An_exec_of_a_program_we_may_not_read_takes_the_lost_path_with_the_S2_message(string kind, UnixFileMode extra)
    {
        var hidden = CopyOfLoop("loop-hidden", extra | ExecuteForAll | UnixFileMode.UserWrite);
        var p = await CreateUnprivileged(FixturePrograms.PathOf("execv"), "execv", hidden, "loop-hidden", "25");
        var runner = new PortDriver(p);
        runner.Plant(BreakpointTests.WorkAddress(p, "execv"));

        var end = await runner.RunToEnd();

        Assert.True(end.Kind == StopKind.Lost, $"{kind}: {end}");
        Assert.Equal("process exec'd set-id or unobservable program", end.Message);
        Assert.Equal(1, runner.Hits);
        Assert.DoesNotContain(StopReason.ExecDone, runner.Reasons);

        // Lost, not dead: the victim waits stopped until it is released, and a resume does not let it go.
        Assert.Equal('t', Observe.State(p.Pid));
        p.Resume();
        await Task.Delay(50);
        Assert.Equal('t', Observe.State(p.Pid));
        p.Release(ReleaseMode.Kill);
        Assert.True(await Observe.Eventually(() => Observe.State(p.Pid) is null));
    }

    [Fact]
    [Trait("Spec", "S2")]
    public async Task Creating_a_program_we_may_not_read_fails_with_the_S2_lost_message_and_registers_nothing()
    {
        var hidden = CopyOfLoop("loop-hidden", ExecuteForAll | UnixFileMode.UserWrite);
        await using var session = new ProcHexSession(Unprivileged, new ProcHexOptions(), TestLog.Factory);

        var e = await Assert.ThrowsAsync<CreateFailedException>(() => session.CreateAsync(hidden, ["loop-hidden", "3"]));

        Assert.Matches("^failed to control pid [0-9]+: process exec'd set-id or unobservable program$", e.Message);
        Assert.Empty(session.Handles);
        var pid = int.Parse(e.Message.Split(' ')[4].TrimEnd(':'), CultureInfo.InvariantCulture);
        Assert.True(await Observe.Eventually(() => Observe.State(pid) is null), $"pid {pid} outlived the failed create");
    }
}
