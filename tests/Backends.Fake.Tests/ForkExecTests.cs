using ProcHex.Ports;

namespace ProcHex.Backends.Fake.Tests;

public class ForkExecTests
{
    private readonly TestKit _kit = new();

    [Fact]
    [Trait("Spec", "S13")]
    public void Fork_reports_starting_before_the_child_exists_and_done_after()
    {
        var process = _kit.Start(_kit.Programs.Fork, "1");

        var starting = _kit.NextStop(process);
        Assert.Equal(StopReason.ForkStarting, starting.Reason);
        Assert.Empty(_kit.Kernel.ChildrenOf(process.Pid));

        process.Resume();
        var done = _kit.NextStop(process);

        Assert.Equal(StopReason.ForkDone, done.Reason);
        var child = Assert.Single(_kit.Kernel.ChildrenOf(process.Pid));
        Assert.Equal(new FakeObservation(true, false, false, false), _kit.Kernel.Observe(child));
    }

    [Fact]
    [Trait("Spec", "S13")]
    public void A_fork_child_inherits_a_planted_breakpoint_and_dies_of_SIGTRAP_on_it()
    {
        var process = _kit.Start(_kit.Programs.Fork, "1");
        var patch = process.PlantBreakpointWhenStopped(_kit);
        Assert.Equal(StopReason.ForkStarting, _kit.NextStop(process).Reason);
        process.Resume();
        Assert.Equal(StopReason.ForkDone, _kit.NextStop(process).Reason);
        var child = Assert.Single(_kit.Kernel.ChildrenOf(process.Pid));
        Assert.Contains(patch.Address, _kit.Kernel.TextDifferences(child));

        process.Resume();
        var stops = _kit.RunToExit(process, patch);

        Assert.Equal(ExitStatus.FromCode(0), stops[^1].Exit);
        Assert.Equal(ExitStatus.FromSignal(Signals.Trap, coreDumped: true), _kit.Kernel.ExitStatusOf(child));
    }

    [Fact]
    [Trait("Spec", "S13")]
    public void A_fork_child_of_clean_text_runs_to_its_own_exit()
    {
        var process = _kit.Start(_kit.Programs.Fork, "2");
        var patch = process.PlantBreakpointWhenStopped(_kit);
        Assert.Equal(StopReason.ForkStarting, _kit.NextStop(process).Reason);
        process.RemoveBreakpoint(patch);
        process.Resume();
        Assert.Equal(StopReason.ForkDone, _kit.NextStop(process).Reason);
        var child = Assert.Single(_kit.Kernel.ChildrenOf(process.Pid));
        Assert.True(_kit.Kernel.TextIsOriginal(child));
        var replanted = process.PlantBreakpoint(patch.Address);
        process.Resume();

        var stops = _kit.RunToExit(process, replanted);

        Assert.Equal(ExitStatus.FromCode(7), _kit.Kernel.ExitStatusOf(child));
        Assert.Equal(2, stops.Count(s => s.Reason == StopReason.Breakpoint));
        Assert.Equal(ExitStatus.FromCode(0), stops[^1].Exit);
    }

    [Fact]
    public void A_vfork_child_shares_its_parents_memory_until_it_execs()
    {
        var process = _kit.Start(_kit.Programs.Vfork, "1");
        Assert.Equal(StopReason.ForkStarting, _kit.NextStop(process).Reason);
        process.Resume();
        _kit.Kernel.Step();
        var child = Assert.Single(_kit.Kernel.ChildrenOf(process.Pid));
        var work = TestKit.Address(process, "work");

        var patch = process.PlantBreakpoint(work);
        Assert.Contains(work, _kit.Kernel.TextDifferences(child));
        process.RemoveBreakpoint(patch);
        Assert.True(_kit.Kernel.TextIsOriginal(child));

        var vforkDone = _kit.NextStop(process);
        Assert.Equal(StopReason.VforkDone, vforkDone.Reason);
        Assert.Equal(_kit.Programs.Loop.Path, _kit.Kernel.ImageOf(child).Path);
        process.PlantBreakpoint(work);
        Assert.True(_kit.Kernel.TextIsOriginal(child));
    }

    [Fact]
    public void A_vfork_parent_waits_until_the_child_execs()
    {
        var process = _kit.Start(_kit.Programs.Vfork, "1");
        Assert.Equal(StopReason.ForkStarting, _kit.NextStop(process).Reason);
        process.Resume();
        _kit.Kernel.Step();
        var child = Assert.Single(_kit.Kernel.ChildrenOf(process.Pid));

        Assert.Contains($"tid {process.Pid} pc", _kit.Kernel.Describe(), StringComparison.Ordinal);
        Assert.Contains("waits for vfork child", _kit.Kernel.Describe(), StringComparison.Ordinal);
        Assert.Equal(StopReason.VforkDone, _kit.NextStop(process).Reason);
        Assert.True(_kit.Kernel.Observe(child).Exists);
    }

    /// <summary>As on Linux, a thread waiting in vfork does not stop for a grab: the grab completes once the child execs.</summary>
    [Fact]
    [Trait("Spec", "S3")]
    public async Task A_grab_of_a_vfork_parent_completes_only_once_its_stopped_child_is_continued_and_execs()
    {
        var (parent, child) = SpawnInVforkWithTheChildStopped();

        var grab = _kit.Tracer.GrabAsync(parent, GrabAccess.Control, default).AsTask();
        Assert.Equal(0, _kit.Kernel.RunUntilQuiet());
        Assert.False(grab.IsCompleted);
        Assert.True(_kit.Kernel.Observe(parent).Traced);
        Assert.Contains("already traced", (await Assert.ThrowsAsync<GrabException>(() => _kit.Tracer.GrabAsync(parent, GrabAccess.Control, default).AsTask())).Message, StringComparison.Ordinal);

        _kit.Kernel.ContinueByOthers(child);
        while (!grab.IsCompleted)
        {
            Assert.True(_kit.Kernel.Step());
        }

        var process = (FakeProcess)await grab;
        Assert.Equal(_kit.Programs.Loop, _kit.Kernel.ImageOf(child));
        process.PlantBreakpoint(TestKit.Address(process, "work"));
        Assert.True(_kit.Kernel.TextIsOriginal(child));
    }

    [Fact]
    [Trait("Spec", "S3")]
    public async Task A_vfork_parent_killed_while_a_grab_waits_for_it_fails_the_grab()
    {
        var (parent, child) = SpawnInVforkWithTheChildStopped();
        var grab = _kit.Tracer.GrabAsync(parent, GrabAccess.Control, default).AsTask();

        _kit.Kernel.Kill(parent);

        var error = await Assert.ThrowsAsync<GrabException>(() => grab);
        Assert.Equal(Errno.ESRCH, error.ErrorNumber);
        Assert.False(_kit.Kernel.Exists(parent));
    }

    [Fact]
    [Trait("Spec", "S3")]
    public async Task A_grab_of_a_vfork_parent_given_up_leaves_it_untraced()
    {
        var (parent, child) = SpawnInVforkWithTheChildStopped();
        using var cancel = new CancellationTokenSource();
        var grab = _kit.Tracer.GrabAsync(parent, GrabAccess.Control, cancel.Token).AsTask();

        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => grab);
        Assert.False(_kit.Kernel.Observe(parent).Traced);
        _kit.Kernel.ContinueByOthers(child);
        _kit.Kernel.RunUntilQuiet();
        Assert.Equal(ExitStatus.FromCode(0), _kit.Kernel.ExitStatusOf(parent));
    }

    [Fact]
    [Trait("Spec", "S13")]
    public void Exec_replaces_the_text_and_wipes_breakpoints()
    {
        var process = _kit.Start(_kit.Programs.Exec, "2");
        Assert.Equal(StopReason.Breakpoint, Stop(process, process.PlantBreakpointWhenStopped(_kit)).Reason);

        var exec = _kit.NextStop(process);

        Assert.Equal(StopReason.ExecDone, exec.Reason);
        Assert.True(_kit.Kernel.TextIsOriginal(process.Pid));
        Assert.Equal(_kit.Programs.Loop.Path, _kit.Kernel.ImageOf(process.Pid).Path);
        Assert.Equal(_kit.Programs.Exec.Path, process.Symbols.Objects[0].Path);
        process.Symbols.Reset();
        Assert.Equal(_kit.Programs.Loop.Path, process.Symbols.Objects[0].Path);
        Assert.Equal(0, TestKit.ReadCalls(process));
    }

    [Fact]
    [Trait("Spec", "S13")]
    public void After_exec_removing_an_old_image_patch_writes_nothing_and_a_new_image_patch_is_restored()
    {
        // The port contract the core relies on when it drops every breakpoint at exec (simulation seed 1032).
        var process = _kit.Start(_kit.Programs.Exec, "2");
        var old = process.PlantBreakpointWhenStopped(_kit);
        Assert.Equal(StopReason.Breakpoint, Stop(process, old).Reason);
        Assert.Equal(StopReason.ExecDone, _kit.NextStop(process).Reason);
        process.Symbols.Reset();

        process.RemoveBreakpoint(old);
        Assert.True(_kit.Kernel.TextIsOriginal(process.Pid));
        Assert.Equal(0, TestKit.ReadCalls(process)); // the new image's memory was not written either

        var fresh = process.PlantBreakpoint(TestKit.Address(process, "work"));
        Assert.Contains(fresh.Address, _kit.Kernel.TextDifferences(process.Pid));
        process.RemoveBreakpoint(fresh);
        Assert.True(_kit.Kernel.TextIsOriginal(process.Pid));
    }

    [Fact]
    public void Exec_of_a_set_id_program_loses_control_and_the_program_runs_on_untraced()
    {
        var setId = new FakeImageBuilder("/usr/bin/passwd").Function("main").SetId().Program(Steps.Exit(3)).Build();
        var image = new FakeImageBuilder("/bin/sh").Function("main").Program(Steps.ExecSetId(setId)).Build();
        _kit.Kernel.Register(image, setId);
        var process = _kit.Start(image);

        var lost = _kit.NextStop(process);

        Assert.Equal(StopEvent.Lost(process.Pid, "process exec'd set-id or unobservable program"), lost);
        Assert.False(_kit.Kernel.Observe(process.Pid).Traced);
        _kit.Kernel.RunUntilQuiet();
        Assert.Equal(ExitStatus.FromCode(3), _kit.Kernel.ExitStatusOf(process.Pid));
        Assert.True(Assert.Throws<TracerException>(process.Resume).IsGone);
    }

    [Fact]
    [Trait("Spec", "S2")]
    public void Creating_a_set_id_program_loses_control_before_its_first_instruction()
    {
        var setId = new FakeImageBuilder("/usr/bin/su").Function("main").SetId().Program(Steps.Exit(0)).Build();
        _kit.Kernel.Register(setId);

        var process = _kit.Start(setId);

        Assert.Equal(StopKind.Lost, _kit.NextStop(process).Kind);
    }

    [Fact]
    public void Exec_without_control_is_not_reported()
    {
        var process = _kit.Create(_kit.Programs.Exec, "1");
        process.Resume();

        var exit = _kit.NextStop(process);

        Assert.Equal(StopEvent.Exited(process.Pid, ExitStatus.FromCode(0)), exit);
    }

    /// <summary>An untraced vfork parent waiting for its child, which has not exec'd yet.</summary>
    /// <summary>A parent waiting in vfork for a child someone else stopped before its exec.</summary>
    private (int Parent, int Child) SpawnInVforkWithTheChildStopped()
    {
        var parent = _kit.Kernel.Spawn(_kit.Programs.Vfork, "1");
        while (_kit.Kernel.ChildrenOf(parent).Count == 0)
        {
            Assert.True(_kit.Kernel.Step());
        }

        var child = _kit.Kernel.ChildrenOf(parent)[0];
        _kit.Kernel.SendSignal(child, Signals.Stop);
        return (parent, child);
    }

    private StopEvent Stop(FakeProcess process, BreakpointPatch patch)
    {
        var stop = _kit.NextStop(process);
        process.StepOverBreakpoint(stop.ThreadId, patch);
        process.Resume();
        return stop;
    }
}

internal static class FakeProcessTestExtensions
{
    /// <summary>Stops the running victim on request, plants a breakpoint on work(), resumes.</summary>
    public static BreakpointPatch PlantBreakpointWhenStopped(this FakeProcess process, TestKit kit)
    {
        process.RequestStop();
        Assert.Equal(StopReason.Interrupted, kit.NextStop(process).Reason);
        var patch = process.PlantBreakpoint(TestKit.Address(process, "work"));
        process.Resume();
        return patch;
    }
}
