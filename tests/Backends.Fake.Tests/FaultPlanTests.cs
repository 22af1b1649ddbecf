using ProcHex.Ports;

namespace ProcHex.Backends.Fake.Tests;

public class FaultPlanTests
{
    private readonly TestKit _kit = new();

    [Fact]
    [Trait("Spec", "S15")]
    public void A_failed_plant_writes_nothing_and_is_recorded()
    {
        _kit.Kernel.Faults = new FaultPlan().FailAt(FakeOperation.PlantBreakpoint, 1, Errno.EIO);
        var process = _kit.Create(_kit.Programs.Loop);
        var work = TestKit.Address(process, "work");

        var error = Assert.Throws<TracerException>(() => process.PlantBreakpoint(work));

        Assert.Equal(Errno.EIO, error.ErrorNumber);
        Assert.False(error.IsGone);
        Assert.True(_kit.Kernel.TextIsOriginal(process.Pid));
        Assert.Equal([new FaultSite(FakeOperation.PlantBreakpoint, Errno.EIO)], _kit.Kernel.Faults.Hits);
        process.PlantBreakpoint(work);
        Assert.Equal([work], _kit.Kernel.TextDifferences(process.Pid));
    }

    [Fact]
    [Trait("Spec", "S16")]
    public void A_failed_remove_leaves_the_int3_in_place()
    {
        _kit.Kernel.Faults = new FaultPlan().FailAt(FakeOperation.RemoveBreakpoint, 1, Errno.ESRCH);
        var process = _kit.Create(_kit.Programs.Loop);
        var patch = process.PlantBreakpoint(TestKit.Address(process, "work"));

        var error = Assert.Throws<TracerException>(() => process.RemoveBreakpoint(patch));

        Assert.True(error.IsGone);
        Assert.Equal([patch.Address], _kit.Kernel.TextDifferences(process.Pid));
    }

    [Fact]
    public void A_failed_resume_leaves_the_victim_stopped()
    {
        _kit.Kernel.Faults = new FaultPlan().FailAt(FakeOperation.Resume, 1, Errno.EINTR);
        var process = _kit.Create(_kit.Programs.Loop);

        Assert.Equal(Errno.EINTR, Assert.Throws<TracerException>(process.Resume).ErrorNumber);

        Assert.True(_kit.Kernel.Observe(process.Pid).Stopped);
        process.Resume();
        Assert.True(_kit.Kernel.CanProgress);
    }

    [Fact]
    public void An_interrupted_wait_keeps_the_report_for_the_next_wait()
    {
        _kit.Kernel.Faults = new FaultPlan().FailAt(FakeOperation.WaitForStop, 2, Errno.EINTR);
        var process = _kit.Start(_kit.Programs.Sleeper);
        process.RequestStop();
        Assert.Equal(StopReason.Interrupted, _kit.NextStop(process).Reason);
        process.Resume();
        process.RequestStop();

        Assert.Equal(Errno.EINTR, Assert.Throws<TracerException>(() => _kit.NextStop(process)).ErrorNumber);

        Assert.Equal(StopReason.Interrupted, _kit.NextStop(process).Reason);
    }

    [Fact]
    public void A_failed_release_changes_nothing_and_the_release_can_be_retried()
    {
        _kit.Kernel.Faults = new FaultPlan().FailAt(FakeOperation.Release, 1, Errno.EPERM);
        var process = _kit.Create(_kit.Programs.Sleeper);

        Assert.Throws<TracerException>(() => process.Release(ReleaseMode.Kill));
        Assert.True(_kit.Kernel.Observe(process.Pid).Traced);

        process.Release(ReleaseMode.Kill);
        Assert.False(_kit.Kernel.Exists(process.Pid));
    }

    [Fact]
    public void A_read_fault_with_EIO_is_a_short_read()
    {
        _kit.Kernel.Faults = new FaultPlan().FailAt(FakeOperation.ReadMemory, 1, Errno.EIO);
        var process = _kit.Create(_kit.Programs.Loop);

        Assert.Equal(8, process.ReadMemory(_kit.Programs.Loop.TextBase, new byte[16]));
        Assert.Equal(16, process.ReadMemory(_kit.Programs.Loop.TextBase, new byte[16]));
    }

    [Fact]
    public void Create_and_grab_faults_surface_as_their_own_exceptions()
    {
        var pid = _kit.Kernel.Spawn(_kit.Programs.Sleeper);
        _kit.Kernel.Faults = new FaultPlan().FailAt(FakeOperation.Create, 1, Errno.EPERM).FailAt(FakeOperation.Grab, 1, Errno.ESRCH);

        Assert.Equal(Errno.EPERM, Assert.Throws<ProcessStartException>(() => _kit.Create(_kit.Programs.Loop)).ErrorNumber);
        Assert.Equal(Errno.ESRCH, Assert.Throws<GrabException>(() => _kit.Grab(pid)).ErrorNumber);
        Assert.Equal([pid], _kit.Kernel.Pids);
        Assert.False(_kit.Kernel.Observe(pid).Traced);
    }

    [Fact]
    public void FailAlways_fails_every_call_from_then_on()
    {
        _kit.Kernel.Faults = new FaultPlan().FailAlways(FakeOperation.SymbolsRefresh, Errno.EIO);
        var process = _kit.Create(_kit.Programs.Loop);

        Assert.Throws<TracerException>(process.Symbols.Refresh);
        Assert.Throws<TracerException>(process.Symbols.Refresh);

        Assert.Equal(2, _kit.Kernel.Faults.Calls(FakeOperation.SymbolsRefresh));
        Assert.True(process.Symbols.TryLookup("a.out", "work", out _));
    }

    [Fact]
    public void Seeded_faults_fire_identically_for_the_same_seed()
    {
        var first = RunWithSeededFaults(seed: 7);
        var second = RunWithSeededFaults(seed: 7);
        var other = RunWithSeededFaults(seed: 8);

        Assert.NotEmpty(first.Hits);
        Assert.Equal(first.Log, second.Log);
        Assert.Equal(first.Hits.OrderBy(h => h.ToString()), second.Hits.OrderBy(h => h.ToString()));
        Assert.NotEqual(first.Log, other.Log);
    }

    [Fact]
    public void Seeded_faults_only_hit_the_chosen_operations_and_errors()
    {
        var plan = FaultPlan.Seeded(3, 1.0, [Errno.EPERM], FakeOperation.ReadFirstArgument);
        _kit.Kernel.Faults = plan;
        var process = _kit.Create(_kit.Programs.Loop);

        process.Resume();
        Assert.Throws<TracerException>(() => process.ReadFirstArgument(process.Pid));

        Assert.Equal([new FaultSite(FakeOperation.ReadFirstArgument, Errno.EPERM)], plan.Hits);
    }

    /// <summary>A crude tracer loop that shrugs off failures: what matters is that the fake replays it exactly.</summary>
    private static (IReadOnlyList<string> Log, IReadOnlySet<FaultSite> Hits) RunWithSeededFaults(int seed)
    {
        var kit = new TestKit();
        var plan = FaultPlan.Seeded(seed, 0.2, operations: [FakeOperation.PlantBreakpoint, FakeOperation.Resume, FakeOperation.StepOverBreakpoint, FakeOperation.ReadMemory]);
        kit.Kernel.Faults = plan;
        var process = kit.Create(kit.Programs.Loop, "20");
        process.BeginControl();
        BreakpointPatch? patch = null;
        for (var attempt = 0; attempt < 5 && patch is null; attempt++)
        {
            patch = Try(() => process.PlantBreakpoint(TestKit.Address(process, "work")));
        }

        ResumeHard(process);
        while (true)
        {
            var stop = kit.NextStop(process);
            if (stop.Kind != StopKind.Stopped)
            {
                break;
            }

            Try(() => process.ReadMemory(stop.ProgramCounter, new byte[8]));
            while (Try(() => { process.StepOverBreakpoint(stop.ThreadId, patch!.Value); return true; }) is null)
            {
            }

            ResumeHard(process);
        }

        return (kit.Kernel.Log, plan.Hits);
    }

    private static void ResumeHard(FakeProcess process)
    {
        while (Try(() => { process.Resume(); return true; }) is null)
        {
        }
    }

    private static T? Try<T>(Func<T> action)
        where T : struct
    {
        try
        {
            return action();
        }
        catch (TracerException)
        {
            return null;
        }
    }
}
