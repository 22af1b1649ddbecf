using Microsoft.Extensions.DependencyInjection;
using ProcHex.Ports;
using ProcHex.Backends.FreeBSD.Tests.FakeKernel;
using ProcHex.Backends.FreeBSD.Tests.Scenarios;
using static Interop;
using static ProcHex.Backends.FreeBSD.Tests.AdapterHarness;

namespace ProcHex.Backends.FreeBSD.Tests;

[Trait("Backend", "FreeBSD")]
public abstract class CreateAndGrabTests(FakeAttach attach)
{
    [Fact]
    [Trait("Spec", "S1")]
    public async Task Create_spawns_the_trampoline_attaches_and_stops_at_the_exec_of_the_program()
    {
        var kernel = FakePrograms.Kernel(attach);
        using var process = await CreateAsync(kernel, FakePrograms.Loop, "5", "3");

        var victim = kernel.Process(process.Pid);
        Assert.Equal(FakeState.TraceStopped, victim.State);
        Assert.Equal(FakePrograms.Loop, victim.ImagePath);
        Assert.Equal([FakePrograms.Loop, "5", "3"], victim.Argv);
        Assert.Equal(FakePrograms.Main, Assert.Single(process.ReadThreads()).ProgramCounter);
        Assert.Equal(0, victim.ExecutedAt(FakePrograms.Main));
        Assert.True(process.Created);
        Assert.Contains($"PT_ATTACH {process.Pid} 0", kernel.Calls);
    }

    [Fact]
    [Trait("Spec", "S1")]
    public async Task Create_searches_PATH_for_a_bare_name_like_execvp()
    {
        var kernel = FakePrograms.Kernel(attach);
        var tracer = new FreeBsdTracer(kernel);
        using var process = await tracer.CreateAsync(
            new ProcessStartRequest("loop", ["loop"], ["PATH=/nonexistent:/usr/local/bin"]), Token);

        Assert.Equal(FakePrograms.Loop, kernel.Process(process.Pid).ImagePath);
        Assert.Equal(["PATH=/nonexistent:/usr/local/bin"], kernel.Process(process.Pid).Environment);
    }

    [Fact]
    [Trait("Spec", "S1")]
    public async Task BeginControl_sets_exec_fork_vfork_and_lwp_events()
    {
        var kernel = FakePrograms.Kernel(attach);
        using var process = await CreateAsync(kernel, FakePrograms.Loop);
        process.BeginControl();

        var mask = kernel.Process(process.Pid).EventMask;
        Assert.Equal((int)(PtraceEvents.PTRACE_EXEC | PtraceEvents.PTRACE_FORK | PtraceEvents.PTRACE_LWP | PtraceEvents.PTRACE_VFORK), mask);
    }

    [Theory]
    [Trait("Spec", "S2")]
    [InlineData("/usr/local/bin/missing", "No such file or directory")]
    [InlineData(FakePrograms.NotExecutable, "Permission denied")]
    [InlineData("missing-everywhere", "No such file or directory")]
    public async Task Create_failure_says_why_and_leaves_nothing_behind(string file, string reason)
    {
        var kernel = FakePrograms.Kernel(attach);
        var tracer = new FreeBsdTracer(kernel);

        var e = await Assert.ThrowsAsync<ProcessStartException>(
            async () => await tracer.CreateAsync(new ProcessStartRequest(file, [file]), Token));

        Assert.Equal(reason, e.Message);
        Assert.DoesNotContain(kernel.Calls, c => c.StartsWith("PT_ATTACH", StringComparison.Ordinal));
    }

    [Fact]
    [Trait("Issue", "22")]
    public async Task Item1_create_options_are_refused_as_unsupported_naming_them_and_nothing_is_started()
    {
        var kernel = FakePrograms.Kernel(attach);
        var tracer = new FreeBsdTracer(kernel);
        var request = new ProcessStartRequest(FakePrograms.Loop, ["loop"])
        {
            WorkingDirectory = "/tmp",
            StandardOutput = StdioTarget.Pipe,
            DisableAslr = true,
        };

        var e = await Assert.ThrowsAsync<ProcessStartException>(async () => await tracer.CreateAsync(request, Token));

        Assert.Equal(TracerErrorKind.Unsupported, e.Kind);
        Assert.Equal(
            "the FreeBSD backend does not support these create options yet: working directory /tmp, standard output pipe, ASLR off; start without them",
            e.Message);
        Assert.DoesNotContain(kernel.Calls, c => c.StartsWith("PT_ATTACH", StringComparison.Ordinal));
    }

    [Fact]
    [Trait("Spec", "S2")]
    public async Task Create_that_cannot_attach_kills_and_reaps_the_trampoline()
    {
        var kernel = FakePrograms.Kernel(attach);
        kernel.FailNext(PtraceRequest.PT_ATTACH, Errno.EPERM);
        var tracer = new FreeBsdTracer(kernel);

        var e = await Assert.ThrowsAsync<ProcessStartException>(
            async () => await tracer.CreateAsync(new ProcessStartRequest(FakePrograms.Loop, ["loop"]), Token));

        Assert.Contains("Operation not permitted", e.Message, StringComparison.Ordinal);
        Assert.False(kernel.IsLive(1000));
    }

    [Fact]
    [Trait("Spec", "S3")]
    public async Task Grab_attaches_consumes_the_SI_KERNEL_SIGSTOP_and_returns_stopped()
    {
        var kernel = FakePrograms.Kernel(attach);
        var pid = kernel.StartUntraced(FakePrograms.Sleeper);
        kernel.RunFree(pid);

        using var process = await GrabAsync(kernel, pid);

        var victim = kernel.Process(pid);
        Assert.True(victim.Traced);
        Assert.Equal(FakeState.TraceStopped, victim.State);
        Assert.Equal(FakeFreeBsdKernel.TracerPid, victim.Parent);
        Assert.False(process.Created);
    }

    [Fact]
    [Trait("Spec", "S3")]
    [Trait("Issue", "22")]
    public async Task Grab_errors_name_the_reason()
    {
        var kernel = FakePrograms.Kernel(attach);
        var tracer = new FreeBsdTracer(kernel);
        var traced = kernel.StartUntraced(FakePrograms.Sleeper);
        using var first = await tracer.GrabAsync(traced, GrabAccess.Control, Token);
        var protectedPid = kernel.StartUntraced(FakePrograms.Sleeper, isProtected: true);

        async Task<string> Fails(int pid) =>
            (await Assert.ThrowsAsync<GrabException>(async () => await tracer.GrabAsync(pid, GrabAccess.Control, Token))).Message;

        Assert.StartsWith("no such process", await Fails(31337), StringComparison.Ordinal);
        Assert.Equal("cannot grab our own process", await Fails(FakeFreeBsdKernel.TracerPid));
        Assert.Equal("already traced by another process", await Fails(traced));
        Assert.StartsWith("permission denied", await Fails(protectedPid), StringComparison.Ordinal);

        // Issue 22 item 3: the same typed refusals as on Linux, with FreeBSD's setting and privilege.
        var busy = await Assert.ThrowsAsync<GrabException>(async () => await tracer.GrabAsync(traced, GrabAccess.Control, Token));
        Assert.Equal((GrabRefusalKind.AlreadyTraced, TracerErrorKind.Busy), (busy.Refusal!.Kind, busy.Kind));
        var denied = await Assert.ThrowsAsync<GrabException>(async () => await tracer.GrabAsync(protectedPid, GrabAccess.Control, Token));
        Assert.Equal(
            (GrabRefusalKind.Unexplained, "security.bsd.unprivileged_proc_debug", "root", TracerErrorKind.PermissionDenied),
            (denied.Refusal!.Kind, denied.Refusal.Setting, denied.Refusal.Privilege, denied.Kind));
    }

    private const string I386 = "/usr/local/bin/i386-sleeper";

    private static FakeFreeBsdKernel KernelWithAnI386Program(FakeAttach attach)
    {
        var kernel = FakePrograms.Kernel(attach);
        kernel.AddFile(new FakeImage
        {
            Path = I386,
            Emulation = "FreeBSD ELF32",
            Text = FakePrograms.Text(),
            TextBase = FakePrograms.Main,
            Entry = FakePrograms.Main,
            Steps = [new Call(FakePrograms.Main), new Block()],
        });
        return kernel;
    }

    [Theory]
    [InlineData(GrabAccess.Control)]
    [InlineData(GrabAccess.ReadOnly)]
    public async Task Grab_refuses_an_i386_process_by_its_ABI_and_leaves_it_untouched_issue_17_item_4(GrabAccess access)
    {
        var kernel = KernelWithAnI386Program(attach);
        var pid = kernel.StartUntraced(I386);
        kernel.RunFree(pid);

        var e = await Assert.ThrowsAsync<ForeignArchitectureException>(
            async () => await new FreeBsdTracer(kernel).GrabAsync(pid, access, Token));

        Assert.Equal("ELF32 i386", e.Architecture);
        Assert.DoesNotContain(kernel.Calls, c => c.StartsWith("PT_", StringComparison.Ordinal));
        Assert.Equal((FakeState.Running, false), kernel.Observe(pid));
    }

    [Fact]
    public async Task Create_of_an_i386_program_kills_and_reaps_it_at_its_exec_issue_17_item_4()
    {
        var kernel = KernelWithAnI386Program(attach);

        var e = await Assert.ThrowsAsync<ForeignArchitectureException>(
            async () => await new FreeBsdTracer(kernel).CreateAsync(new ProcessStartRequest(I386, [I386]), Token));

        Assert.Equal("unsupported architecture: ELF32 i386; ProcHex controls x86-64 processes only", e.Message);
        Assert.False(kernel.IsLive(1000));
    }

    [Fact]
    public async Task A_handle_whose_pid_was_reused_knows_it_by_the_start_time_issue_17_item_3()
    {
        var kernel = FakePrograms.Kernel(attach);
        var tracer = new FreeBsdTracer(kernel);
        var pid = kernel.StartUntraced(FakePrograms.Sleeper);
        using var process = await GrabAsync(kernel, pid, GrabAccess.ReadOnly);
        var started = tracer.StartTimeOf(pid);
        Assert.NotNull(started);
        Assert.Equal(started, process.StartTime);
        Assert.False(process.WasReplaced());

        _ = kernel.Kill(pid, Signals.SIGKILL, out _);
        Assert.False(kernel.IsLive(pid));
        Assert.False(process.WasReplaced());
        Assert.Equal(pid, kernel.StartUntraced(FakePrograms.Sleeper, pid: pid));

        Assert.True(process.WasReplaced());
        Assert.NotEqual(started, tracer.StartTimeOf(pid));
    }

    [Fact]
    [Trait("Spec", "S4")]
    public async Task Read_only_grab_neither_stops_nor_traces_and_reads_symbols_from_the_mapped_ELF_files()
    {
        var kernel = FakeCatalogue.NewKernel(attach);
        var sleeper = FixturePrograms.PathOf("sleeper");
        var pid = kernel.StartUntraced(sleeper);

        using var process = await GrabAsync(kernel, pid, GrabAccess.ReadOnly);

        Assert.DoesNotContain(kernel.Calls, c => c.StartsWith("PT_", StringComparison.Ordinal));
        Assert.Equal((FakeState.Running, false), kernel.Observe(pid));
        Assert.Equal([sleeper, FakeRtld.StubPath], process.Symbols.Objects.Select(o => o.Path));
        Assert.True(process.Symbols.TryLookup("a.out", "work", out var work));
        Assert.True(process.Symbols.TryResolve(work + 1, out var where));
        Assert.Equal("sleeper`work+0x1", where.ToString());
        Assert.True(process.Symbols.TryLookup("ld-elf.so.1", "r_debug_state", out _));
        Assert.Equal(4, process.ReadMemory(work, new byte[4]));

        kernel.ProcfsMounted = false;
        var e = Assert.Throws<TracerException>(() => process.ReadMemory(work, new byte[4]));
        Assert.Contains("procfs", e.Message, StringComparison.Ordinal);
        process.Release(ReleaseMode.Run);
        Assert.Equal((FakeState.Running, false), kernel.Observe(pid));
    }

    [Fact]
    [Trait("Spec", "S17")]
    public async Task Rtld_agent_finds_ld_elf_by_AT_BASE_and_tells_preinit_postinit_and_dlopen_apart()
    {
        var kernel = FakeCatalogue.NewKernel(attach);
        using var process = await CreateAsync(kernel, FixturePrograms.PathOf("dlopen"), "1");
        process.BeginControl();
        var rtld = process.OpenRtldAgent();
        Assert.NotNull(rtld);
        Assert.True(rtld.EnableEvents());
        Assert.True(rtld.TryGetEventAddress(RtldEventKind.Preinit, out var state));
        Assert.True(rtld.TryGetEventAddress(RtldEventKind.DlActivity, out var activity));
        Assert.True(rtld.TryGetEventAddress(RtldEventKind.Postinit, out var postinit));
        Assert.Equal(state, activity);
        var patches = new[] { state, postinit }.ToDictionary(a => a, process.PlantBreakpoint);

        var messages = new List<RtldEventMessage>();
        process.Resume();
        while (await process.WaitForStopAsync(Token) is { Kind: StopKind.Stopped } stop)
        {
            Assert.Equal(StopReason.Breakpoint, stop.Reason);
            messages.Add(rtld.ReadEventMessage());
            process.StepOverBreakpoint(stop.ThreadId, patches[stop.ProgramCounter]);
            process.Resume();
        }

        Assert.Equal(
        [
            new(RtldEventKind.Preinit, RtldState.Consistent), new(RtldEventKind.Postinit, RtldState.Consistent),
            new(RtldEventKind.DlActivity, RtldState.Adding), new(RtldEventKind.DlActivity, RtldState.Consistent),
            new(RtldEventKind.DlActivity, RtldState.Deleting), new(RtldEventKind.DlActivity, RtldState.Consistent),
        ], messages);
        Assert.Empty(kernel.Violations);
    }

    [Fact]
    public void UseFreeBsd_fails_at_start_up_off_FreeBSD()
    {
        if (OperatingSystem.IsFreeBSD())
        {
            return;
        }

        var services = new ServiceCollection();

        var e = Assert.Throws<PlatformNotSupportedException>(() => services.AddProcHex(b => b.UseFreeBsd()));

        Assert.Contains("FreeBSD", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UseFreeBsd_with_a_kernel_registers_the_adapter_on_any_OS()
    {
        var services = new ServiceCollection();
        services.AddProcHex(b => b.UseFreeBsd(FakePrograms.Kernel(attach)));

        using var provider = services.BuildServiceProvider();

        Assert.Equal("freebsd", provider.GetRequiredService<IProcessTracer>().Name);
    }
}

/// <summary>CreateAndGrabTests on a kernel with FreeBSD 14's PT_ATTACH (a queued SIGSTOP).</summary>
public sealed class CreateAndGrabTestsClassicAttach() : CreateAndGrabTests(FakeAttach.Classic);

/// <summary>CreateAndGrabTests on a kernel with transparent attach (debug.ptrace_attach_transparent).</summary>
public sealed class CreateAndGrabTestsTransparentAttach() : CreateAndGrabTests(FakeAttach.Transparent);
