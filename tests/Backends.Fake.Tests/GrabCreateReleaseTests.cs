using ProcHex.Ports;

namespace ProcHex.Backends.Fake.Tests;

public class GrabCreateReleaseTests
{
    private readonly TestKit _kit = new();

    [Fact]
    [Trait("Spec", "S1")]
    public void Create_returns_a_traced_victim_stopped_before_its_first_instruction()
    {
        var process = _kit.Create(_kit.Programs.Loop, "1");

        Assert.Equal(new FakeObservation(true, false, true, true), _kit.Kernel.Observe(process.Pid));
        Assert.Equal(FakeDynamicLinker.Default.Entry, Assert.Single(process.ReadThreads()).ProgramCounter);
        Assert.False(_kit.Kernel.CanProgress);
        Assert.Equal(0, TestKit.ReadCalls(process));
    }

    [Fact]
    [Trait("Spec", "S2")]
    public async Task Create_of_an_unknown_file_says_no_such_file()
    {
        var error = await Assert.ThrowsAsync<ProcessStartException>(
            () => _kit.Tracer.CreateAsync(new ProcessStartRequest("/no/such", ["/no/such"]), default).AsTask());

        Assert.Equal("No such file or directory", error.Message);
        Assert.Equal(Errno.ENOENT, error.ErrorNumber);
        Assert.Empty(_kit.Kernel.Pids);
    }

    [Fact]
    public async Task Create_finds_a_bare_name_like_a_PATH_search()
    {
        var process = await _kit.Tracer.CreateAsync(new ProcessStartRequest("loop", ["loop", "2"]), default);

        Assert.Equal(_kit.Programs.Loop, _kit.Kernel.ImageOf(process.Pid));
    }

    [Theory]
    [Trait("Spec", "S3")]
    [InlineData("missing", "no such process")]
    [InlineData("zombie", "zombie")]
    [InlineData("traced", "already traced")]
    [InlineData("self", "our own process")]
    [InlineData("permission", "permission denied")]
    public async Task Grab_failures_say_why(string situation, string reason)
    {
        var pid = situation switch
        {
            "missing" => 999,
            "self" => _kit.Kernel.SelfPid,
            _ => _kit.Kernel.Spawn(_kit.Programs.Sleeper),
        };
        switch (situation)
        {
            case "zombie":
                var parentOfZombie = new FakeImageBuilder("/bin/parent").Function("main")
                    .Program(Steps.Fork(Steps.Exit(1)), Steps.Spin("main")).Build();
                var parent = _kit.Kernel.Spawn(parentOfZombie);
                _kit.Kernel.RunUntilQuiet(20);
                pid = Assert.Single(_kit.Kernel.ChildrenOf(parent));
                Assert.True(_kit.Kernel.Observe(pid).Zombie);
                break;
            case "traced":
                _kit.Kernel.SetTracedByOthers(pid);
                break;
            case "permission":
                _kit.Kernel.SetPermissionDenied(pid);
                break;
        }

        var error = await Assert.ThrowsAsync<GrabException>(() => _kit.Tracer.GrabAsync(pid, GrabAccess.Control, default).AsTask());

        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    [Trait("Spec", "S3")]
    public void Grabbing_for_control_twice_fails_as_already_traced()
    {
        var pid = _kit.Kernel.Spawn(_kit.Programs.Sleeper);
        _kit.Grab(pid);

        Assert.Contains("already traced", Assert.Throws<GrabException>(() => _kit.Grab(pid)).Message, StringComparison.Ordinal);
    }

    [Fact]
    [Trait("Spec", "S3")]
    public void Grab_for_control_stops_the_victim()
    {
        var pid = _kit.Kernel.Spawn(_kit.Programs.Sleeper);
        _kit.Kernel.RunUntilQuiet(10);

        var process = _kit.Grab(pid);

        Assert.Equal(new FakeObservation(true, false, true, true), _kit.Kernel.Observe(pid));
        Assert.False(_kit.Kernel.CanProgress);
        Assert.True(TestKit.ReadCalls(process) > 0);
    }

    [Fact]
    [Trait("Spec", "S4")]
    public void Grab_read_only_neither_stops_nor_traces_but_reads()
    {
        var pid = _kit.Kernel.Spawn(_kit.Programs.Sleeper);
        _kit.Kernel.RunUntilQuiet(10);

        var process = _kit.Grab(pid, GrabAccess.ReadOnly);

        Assert.Equal(new FakeObservation(true, false, false, false), _kit.Kernel.Observe(pid));
        Assert.True(_kit.Kernel.CanProgress);
        var before = TestKit.ReadCalls(process);
        _kit.Kernel.RunUntilQuiet(10);
        Assert.True(TestKit.ReadCalls(process) > before);
        Assert.Throws<InvalidOperationException>(process.Resume);
    }

    [Fact]
    [Trait("Spec", "S9")]
    public void Release_Kill_kills_and_reaps_a_created_victim()
    {
        var process = _kit.Start(_kit.Programs.Sleeper);

        process.Release(ReleaseMode.Kill);

        Assert.Equal(FakeObservation.Gone, _kit.Kernel.Observe(process.Pid));
        Assert.Equal(ExitStatus.FromSignal(Signals.Kill), _kit.Kernel.ExitStatusOf(process.Pid));
    }

    [Fact]
    [Trait("Spec", "S9")]
    public void Release_of_a_created_victim_that_exited_reaps_the_zombie()
    {
        var process = _kit.Start(_kit.Programs.Loop, "1");
        _kit.NextStop(process);
        Assert.True(_kit.Kernel.Observe(process.Pid).Zombie);

        process.Release(ReleaseMode.Kill);

        Assert.False(_kit.Kernel.Exists(process.Pid));
    }

    [Fact]
    [Trait("Spec", "S9")]
    public void Release_Run_detaches_and_leaves_the_victim_running()
    {
        var pid = _kit.Kernel.Spawn(_kit.Programs.Sleeper);
        var process = _kit.Grab(pid);

        process.Release(ReleaseMode.Run);

        Assert.Equal(new FakeObservation(true, false, false, false), _kit.Kernel.Observe(pid));
        Assert.True(_kit.Kernel.CanProgress);
    }

    [Fact]
    [Trait("Spec", "S9")]
    public void Release_Hang_detaches_and_leaves_the_victim_stopped()
    {
        var pid = _kit.Kernel.Spawn(_kit.Programs.Sleeper);
        var process = _kit.Grab(pid);

        process.Release(ReleaseMode.Hang);

        Assert.Equal(new FakeObservation(true, false, true, false), _kit.Kernel.Observe(pid));
        Assert.False(_kit.Kernel.CanProgress);
    }

    [Fact]
    public void Dispose_without_release_applies_the_last_close_rules()
    {
        var created = _kit.Create(_kit.Programs.Sleeper);

        created.Dispose();

        Assert.False(_kit.Kernel.Exists(created.Pid));
    }

    [Fact]
    public void Every_call_after_release_is_refused()
    {
        var process = _kit.Create(_kit.Programs.Sleeper);
        process.Release(ReleaseMode.Kill);

        Assert.Throws<InvalidOperationException>(process.Resume);
        Assert.Throws<InvalidOperationException>(() => process.Release(ReleaseMode.Kill));
        Assert.Throws<InvalidOperationException>(() => process.ReadMemory(0x401000, new byte[1]));
    }

    [Fact]
    public async Task A_pending_wait_fails_as_gone_when_the_victim_is_released()
    {
        var process = _kit.Start(_kit.Programs.Sleeper);
        var wait = process.WaitForStopAsync(CancellationToken.None).AsTask();
        _kit.Kernel.SendSignal(process.Pid, Signals.Stop);
        Assert.Equal(StopReason.StoppedByOthers, (await wait).Reason);
        var second = process.WaitForStopAsync(CancellationToken.None).AsTask();

        process.Release(ReleaseMode.Hang);

        Assert.True((await Assert.ThrowsAsync<TracerException>(() => second)).IsGone);
    }
}
