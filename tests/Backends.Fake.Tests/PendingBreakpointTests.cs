using ProcHex.Ports;

namespace ProcHex.Backends.Fake.Tests;

/// <summary>Pending breakpoints (SPECs that follow the program through exec and dlopen) on the real session over the fake.</summary>
public class PendingBreakpointTests
{
    private readonly TestKit _kit = new();

    [Fact]
    public void A_spec_the_first_image_lacks_is_pending_then_planted_in_the_image_an_exec_brings()
    {
        var target = Register(new FakeImageBuilder("/bin/target").Function("main").Function("hit").Program(Steps.Loop(3, Steps.Call("hit")), Steps.Exit(0)).Build());
        var wrapper = Register(new FakeImageBuilder("/bin/wrapper").Function("main").Program(Steps.Exec(target)).Build());
        var changes = new List<PendingBreakpointChange>();

        var (breakpoint, stateAtSet, sitesAtSet, exit) = Run(wrapper, "hit", changes);

        Assert.Equal(PendingBreakpointState.Pending, stateAtSet);
        Assert.Equal(0, sitesAtSet);
        Assert.Equal(ExitStatus.FromCode(0), exit);
        Assert.Equal(3, breakpoint.Hits);
        Assert.Equal(PendingBreakpointState.Planted, breakpoint.State);
        Assert.True(breakpoint.FoundInCurrentImage);
        Assert.Equal([wrapper.Path, target.Path], breakpoint.ImagesSearched);
        var site = Assert.Single(breakpoint.EverPlanted);
        Assert.Equal(new PlantedSymbol(target.AddressOf("hit"), "target", "hit", target.Path), site);
        Assert.Equal([site], breakpoint.Sites);
        Assert.Equal(PendingBreakpointChangeKind.Pending, changes[0].Kind);
        Assert.Equal("no object of /bin/wrapper defines hit; waiting for a dlopen or an exec", changes[0].Reason);
        var planted = Assert.Single(changes, c => c.Kind == PendingBreakpointChangeKind.Planted);
        Assert.Same(breakpoint, planted.Breakpoint);
        Assert.Equal([site], planted.Sites);
        Assert.Null(planted.Reason);
        Assert.Equal(changes[^1], planted);
        Assert.Equal("hit (Planted, 3 hits)", breakpoint.ToString());
    }

    [Fact]
    public void A_spec_no_image_defines_is_told_once_per_reason_and_looked_up_in_the_executable_only_until_the_initial_libraries()
    {
        var wrapper = Register(new FakeImageBuilder("/bin/wrapper2").Function("main").Program(Steps.Loop(3, Steps.Call("main")), Steps.Exec(_kit.Programs.Loop, "2")).Build());
        var changes = new List<PendingBreakpointChange>();

        var (breakpoint, _, _, exit) = Run(wrapper, "hit", changes);

        Assert.Equal(ExitStatus.FromCode(0), exit);
        Assert.All(changes, c => Assert.Equal(PendingBreakpointChangeKind.Pending, c.Kind));
        Assert.All(changes, c => Assert.Empty(c.Sites));
        Assert.Equal(
            [
                "no object of /bin/wrapper2 defines hit; waiting for a dlopen or an exec",
                $"{_kit.Programs.Loop.Path} does not define hit; waiting for the initial libraries",
                $"no object of {_kit.Programs.Loop.Path} defines hit; waiting for a dlopen or an exec",
            ],
            changes.Select(c => c.Reason));
        Assert.Equal(0, breakpoint.Hits);
        Assert.Empty(breakpoint.EverPlanted);
        Assert.False(breakpoint.FoundInCurrentImage);
        Assert.Equal([wrapper.Path, _kit.Programs.Loop.Path], breakpoint.ImagesSearched);
    }

    [Fact]
    public void Hits_are_counted_over_the_whole_run_across_an_exec_and_the_spec_is_replanted_in_the_new_image()
    {
        var changes = new List<PendingBreakpointChange>();

        var (breakpoint, stateAtSet, sitesAtSet, exit) = Run(_kit.Programs.Exec, "work", changes, "3");

        Assert.Equal(PendingBreakpointState.Planted, stateAtSet);
        Assert.Equal(1, sitesAtSet);
        Assert.Equal(ExitStatus.FromCode(0), exit);
        Assert.Equal(4, breakpoint.Hits); // once in exec, three times in loop
        Assert.Equal([_kit.Programs.Exec.Path, _kit.Programs.Loop.Path], breakpoint.ImagesSearched);
        Assert.Equal([_kit.Programs.Exec.Path, _kit.Programs.Loop.Path], breakpoint.EverPlanted.Select(s => s.Image));
        Assert.Equal(_kit.Programs.Loop.AddressOf("work"), Assert.Single(breakpoint.Sites).Address);
        Assert.True(breakpoint.FoundInCurrentImage);
        Assert.Equal(
            [PendingBreakpointChangeKind.Planted, PendingBreakpointChangeKind.Pending, PendingBreakpointChangeKind.Planted],
            changes.Select(c => c.Kind));
        Assert.Equal("its image was replaced by an exec", changes[1].Reason);
    }

    [Fact]
    public void A_spec_only_an_earlier_image_defines_is_pending_in_the_final_image_but_keeps_its_hits()
    {
        var wrapper = Register(new FakeImageBuilder("/bin/shim").Function("main").Function("only").Program(Steps.Loop(2, Steps.Call("only")), Steps.Exec(_kit.Programs.Loop, "1")).Build());
        var changes = new List<PendingBreakpointChange>();

        var (breakpoint, _, _, exit) = Run(wrapper, "only", changes);

        Assert.Equal(ExitStatus.FromCode(0), exit);
        Assert.Equal(2, breakpoint.Hits);
        Assert.Equal(PendingBreakpointState.Pending, breakpoint.State);
        Assert.False(breakpoint.FoundInCurrentImage);
        Assert.Empty(breakpoint.Sites);
        Assert.Equal(wrapper.Path, Assert.Single(breakpoint.EverPlanted).Image);
        Assert.Equal([wrapper.Path, _kit.Programs.Loop.Path], breakpoint.ImagesSearched);
        Assert.Contains(changes, c => c.Kind == PendingBreakpointChangeKind.Pending && c.Reason == "its image was replaced by an exec");
    }

    [Fact]
    public void An_image_exec_d_twice_is_listed_once_in_images_searched()
    {
        var again = Register(new FakeImageBuilder("/bin/again").Function("main").Function("work").Program(args => args.Count > 1 ? [Steps.Call("work"), Steps.Exit(0)] : [Steps.Call("work"), Steps.Exec(_kit.Programs.Exec, "1")]).Build());
        var changes = new List<PendingBreakpointChange>();

        var (breakpoint, _, _, _) = Run(again, "work", changes);

        Assert.Equal([again.Path, _kit.Programs.Exec.Path, _kit.Programs.Loop.Path], breakpoint.ImagesSearched);
        Assert.Equal(3, breakpoint.Hits);
        Assert.Equal(3, breakpoint.EverPlanted.Count);
    }

    [Fact]
    public void A_spec_a_dlopened_library_defines_is_planted_there_and_goes_back_to_pending_at_dlclose()
    {
        var changes = new List<PendingBreakpointChange>();

        var (breakpoint, stateAtSet, _, exit) = Run(_kit.Programs.Dlopen, "libwork", changes, "2");

        Assert.Equal(PendingBreakpointState.Pending, stateAtSet);
        Assert.Equal(ExitStatus.FromCode(0), exit);
        Assert.Equal(2, breakpoint.Hits);
        Assert.Equal(PendingBreakpointState.Pending, breakpoint.State);
        Assert.Empty(breakpoint.Sites);
        var site = Assert.Single(breakpoint.EverPlanted);
        Assert.Equal("libprochex-test.so", site.ObjectName);
        Assert.Equal("libwork", site.Symbol);
        Assert.Equal(_kit.Programs.Dlopen.Path, site.Image);
        Assert.True(breakpoint.FoundInCurrentImage); // found in this image once, though no longer planted
        Assert.Equal([_kit.Programs.Dlopen.Path], breakpoint.ImagesSearched);
        var planted = changes.FindIndex(c => c.Kind == PendingBreakpointChangeKind.Planted);
        Assert.True(planted > 0);
        Assert.Equal(planted, changes.FindLastIndex(c => c.Kind == PendingBreakpointChangeKind.Planted));
        var unloaded = changes[planted + 1];
        Assert.Equal(PendingBreakpointChangeKind.Pending, unloaded.Kind);
        Assert.Equal("libprochex-test.so was unloaded", unloaded.Reason);
        Assert.Contains("waiting for a dlopen or an exec", changes[^1].Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void An_object_qualified_spec_waits_for_its_object_to_be_loaded()
    {
        var changes = new List<PendingBreakpointChange>();

        var (breakpoint, _, _, _) = Run(_kit.Programs.Dlopen, "libprochex-test.so`libwork", changes, "3");

        Assert.Equal(3, breakpoint.Hits);
        Assert.Equal("libprochex-test.so is not loaded (in /usr/libexec/prochex-test/dlopen); waiting for a dlopen or an exec", changes[0].Reason);
        Assert.Single(changes, c => c.Kind == PendingBreakpointChangeKind.Planted);
    }

    [Fact]
    public void An_object_qualified_spec_on_a_loaded_object_that_lacks_the_symbol_waits_for_an_exec()
    {
        var changes = new List<PendingBreakpointChange>();

        var (breakpoint, _, _, _) = Run(_kit.Programs.Loop, "a.out`nothing", changes, "2");

        Assert.Equal(0, breakpoint.Hits);
        Assert.Equal(PendingBreakpointState.Pending, breakpoint.State);
        Assert.Equal("a.out does not define nothing (in /usr/libexec/prochex-test/loop); waiting for an exec", Assert.Single(changes).Reason);
        Assert.Empty(breakpoint.EverPlanted);
        Assert.False(breakpoint.FoundInCurrentImage);
    }

    [Fact]
    public void A_wildcard_spec_is_planted_in_the_first_object_that_has_a_match()
    {
        var changes = new List<PendingBreakpointChange>();

        var (breakpoint, stateAtSet, _, _) = Run(_kit.Programs.Dlopen, "libw*", changes, "2");

        Assert.Equal(PendingBreakpointState.Pending, stateAtSet);
        Assert.Equal(2, breakpoint.Hits);
        Assert.Equal("libwork", Assert.Single(breakpoint.EverPlanted).Symbol);
    }

    [Fact]
    public void A_wildcard_spec_matching_the_executable_is_planted_at_once()
    {
        var changes = new List<PendingBreakpointChange>();

        var (breakpoint, stateAtSet, sitesAtSet, _) = Run(_kit.Programs.Loop, "w?rk", changes, "4");

        Assert.Equal(PendingBreakpointState.Planted, stateAtSet);
        Assert.Equal(1, sitesAtSet);
        Assert.Equal(4, breakpoint.Hits);
        Assert.Equal(new PlantedSymbol(_kit.Programs.Loop.AddressOf("work"), "loop", "work", _kit.Programs.Loop.Path), Assert.Single(breakpoint.Sites));
    }

    [Fact]
    public void Removing_a_planted_spec_restores_the_text_stops_counting_and_is_idempotent()
    {
        var result = DeterministicScheduler.Run(
            async () =>
            {
                await using var session = new ProcHexSession(_kit.Tracer);
                var handle = await session.CreateAsync(_kit.Programs.Loop.Path, [_kit.Programs.Loop.Path, "3"]);
                var handlerHits = 0;
                var breakpoint = await session.SetPendingBreakpointAsync(handle, "work", _ => handlerHits++);
                var planted = breakpoint.State;
                var dirty = breakpoint.Sites.Count == 1;
                await session.RemovePendingBreakpointAsync(breakpoint);
                var clean = _kit.Kernel.TextIsOriginal(handle.Pid);
                await session.RemovePendingBreakpointAsync(breakpoint);
                session.Continue(handle);
                var exit = await ExitOf(session);
                return (breakpoint, planted, dirty, clean, handlerHits, exit);
            },
            _kit.Kernel,
            seed: 1);

        Assert.Equal(PendingBreakpointState.Planted, result.planted);
        Assert.True(result.dirty);
        Assert.True(result.clean);
        Assert.Equal(PendingBreakpointState.Removed, result.breakpoint.State);
        Assert.Empty(result.breakpoint.Sites);
        Assert.Equal(0, result.breakpoint.Hits);
        Assert.Equal(0, result.handlerHits);
        Assert.Equal(ExitStatus.FromCode(0), result.exit);
    }

    [Fact]
    public void Removing_a_spec_from_a_running_victim_stops_counting_and_leaves_its_text_original_after_release()
    {
        var pid = _kit.Kernel.Spawn(_kit.Programs.Sleeper);

        var (breakpoint, hitsAtRemoval) = DeterministicScheduler.Run(
            async () =>
            {
                await using var session = new ProcHexSession(_kit.Tracer);
                var handle = await session.GrabAsync(pid);
                var twoHits = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                var count = 0;
                var pending = await session.SetPendingBreakpointAsync(handle, "work", _ =>
                {
                    if (++count == 2)
                    {
                        twoHits.TrySetResult();
                    }
                });
                session.Continue(handle);
                await twoHits.Task;
                await session.RemovePendingBreakpointAsync(pending);
                var atRemoval = pending.Hits;
                await session.ReleaseAsync(handle);
                return (pending, atRemoval);
            },
            _kit.Kernel,
            seed: 2);

        Assert.True(hitsAtRemoval >= 2);
        Assert.Equal(hitsAtRemoval, breakpoint.Hits);
        Assert.Equal(PendingBreakpointState.Removed, breakpoint.State);
        Assert.Empty(breakpoint.Sites);
        Assert.Single(breakpoint.EverPlanted);
        Assert.True(_kit.Kernel.TextIsOriginal(pid));
    }

    [Fact]
    public void A_removed_pending_spec_is_not_looked_up_again_at_exec()
    {
        var changes = new List<PendingBreakpointChange>();
        var wrapper = Register(new FakeImageBuilder("/bin/wrapper3").Function("main").Program(Steps.Exec(_kit.Programs.Loop, "2")).Build());

        var breakpoint = DeterministicScheduler.Run(
            async () =>
            {
                await using var session = new ProcHexSession(_kit.Tracer) { PendingBreakpointChanged = changes.Add };
                var handle = await session.CreateAsync(wrapper.Path, [wrapper.Path]);
                var pending = await session.SetPendingBreakpointAsync(handle, "work", _ => { });
                await session.RemovePendingBreakpointAsync(pending);
                session.Continue(handle);
                await ExitOf(session);
                return pending;
            },
            _kit.Kernel,
            seed: 1);

        Assert.Equal(PendingBreakpointState.Removed, breakpoint.State);
        Assert.Equal(0, breakpoint.Hits);
        Assert.Equal([wrapper.Path], breakpoint.ImagesSearched);
        Assert.DoesNotContain(changes, c => c.Kind == PendingBreakpointChangeKind.Planted);
    }

    [Fact]
    public void A_failing_change_handler_becomes_an_error_notification_and_the_victim_runs_on()
    {
        var (notifications, hits) = DeterministicScheduler.Run(
            async () =>
            {
                await using var session = new ProcHexSession(_kit.Tracer) { PendingBreakpointChanged = _ => throw new InvalidOperationException("handler broke") };
                var handle = await session.CreateAsync(_kit.Programs.Loop.Path, [_kit.Programs.Loop.Path, "2"]);
                var breakpoint = await session.SetPendingBreakpointAsync(handle, "work", _ => { });
                session.Continue(handle);
                var seen = new List<VictimNotification>();
                while (await session.WaitForNotificationAsync(Timeout.InfiniteTimeSpan) is { } notification)
                {
                    seen.Add(notification);
                    if (notification.Kind != NotificationKind.Error)
                    {
                        break;
                    }
                }

                return (seen, breakpoint.Hits);
            },
            _kit.Kernel,
            seed: 1);

        Assert.Equal("handler broke", notifications[0].Message);
        Assert.Equal(NotificationKind.Error, notifications[0].Kind);
        Assert.Equal(ExitStatus.FromCode(0), notifications[^1].Exit);
        Assert.Equal(2, hits);
    }

    [Fact]
    public async Task Setting_or_removing_on_a_released_handle_fails_with_an_invalid_handle()
    {
        var errors = DeterministicScheduler.Run(
            async () =>
            {
                await using var session = new ProcHexSession(_kit.Tracer);
                var handle = await session.CreateAsync(_kit.Programs.Loop.Path, [_kit.Programs.Loop.Path, "2"]);
                var breakpoint = await session.SetPendingBreakpointAsync(handle, "work", _ => { });
                await session.ReleaseAsync(handle);
                var set = await Record(() => session.SetPendingBreakpointAsync(handle, "work", _ => { }));
                var remove = await Record(() => session.RemovePendingBreakpointAsync(breakpoint));
                return (set, remove);
            },
            _kit.Kernel,
            seed: 1);

        Assert.IsType<InvalidHandleException>(errors.set);
        Assert.Contains("released", errors.set!.Message, StringComparison.Ordinal);
        Assert.IsType<InvalidHandleException>(errors.remove);
        await Task.CompletedTask;
    }

    [Fact]
    public void A_handle_of_another_session_or_a_malformed_spec_is_refused()
    {
        var errors = DeterministicScheduler.Run(
            async () =>
            {
                await using var session = new ProcHexSession(_kit.Tracer);
                await using var other = new ProcHexSession(_kit.Tracer);
                var handle = await session.CreateAsync(_kit.Programs.Loop.Path, [_kit.Programs.Loop.Path, "1"]);
                var foreign = await Record(() => other.SetPendingBreakpointAsync(handle, "work", _ => { }));
                var malformed = await Record(() => session.SetPendingBreakpointAsync(handle, "`work", _ => { }));
                var empty = await Record(() => session.SetPendingBreakpointAsync(handle, string.Empty, _ => { }));
                var noHandler = await Record(() => session.SetPendingBreakpointAsync(handle, "work", null!));
                var noBreakpoint = await Record(() => session.RemovePendingBreakpointAsync(null!));
                return (foreign, malformed, empty, noHandler, noBreakpoint);
            },
            _kit.Kernel,
            seed: 1);

        Assert.IsType<InvalidHandleException>(errors.foreign);
        Assert.Contains("does not belong to this session", errors.foreign!.Message, StringComparison.Ordinal);
        Assert.IsAssignableFrom<ArgumentException>(errors.malformed);
        Assert.IsAssignableFrom<ArgumentException>(errors.empty);
        Assert.IsType<ArgumentNullException>(errors.noHandler);
        Assert.IsType<ArgumentNullException>(errors.noBreakpoint);
    }

    private FakeImage Register(FakeImage image)
    {
        _kit.Kernel.Register(image);
        return image;
    }

    /// <summary>Creates <paramref name="image"/>, sets <paramref name="spec"/> at the rendezvous, runs to exit.</summary>
    private (PendingBreakpoint Breakpoint, PendingBreakpointState StateAtSet, int SitesAtSet, ExitStatus? Exit) Run(
        FakeImage image,
        string spec,
        List<PendingBreakpointChange> changes,
        params string[] arguments) =>
        DeterministicScheduler.Run(
            async () =>
            {
                await using var session = new ProcHexSession(_kit.Tracer) { PendingBreakpointChanged = changes.Add };
                var handle = await session.CreateAsync(image.Path, [image.Path, .. arguments]);
                var handlerHits = 0;
                var breakpoint = await session.SetPendingBreakpointAsync(handle, spec, _ => handlerHits++);
                var state = breakpoint.State;
                var sites = breakpoint.Sites.Count;
                session.Continue(handle);
                var exit = await ExitOf(session);
                Assert.Equal(breakpoint.Hits, handlerHits);
                return (breakpoint, state, sites, exit);
            },
            _kit.Kernel,
            seed: 1);

    private static async Task<ExitStatus?> ExitOf(ProcHexSession session)
    {
        while (await session.WaitForNotificationAsync(Timeout.InfiniteTimeSpan) is { } notification)
        {
            if (notification.Kind != NotificationKind.Error)
            {
                return notification.Exit;
            }
        }

        return null;
    }

    private static async Task<Exception?> Record(Func<Task> action)
    {
        try
        {
            await action();
            return null;
        }
#pragma warning disable CA1031 // The test inspects whatever was thrown.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            return ex;
        }
    }
}
