using ProcHex.PortContract;
using ProcHex.Ports;
using ProcHex.Backends.Linux.Tests.Support;

namespace ProcHex.Backends.Linux.Tests;

/// <summary>
/// Issue 17 item 4: a program or process that is not x86-64 is refused with "unsupported architecture: ..." before
/// anything is written into it. The foreign programs are written byte by byte (<see cref="ForeignPrograms"/>).
/// </summary>
[Trait("Backend", "Linux")]
public sealed class ForeignArchitectureTests : LinuxTestBase
{
    [Theory]
    [InlineData(ForeignPrograms.I386, "ELF32 i386")]
    [InlineData(ForeignPrograms.X32, "x32 (ELF32 x86-64)")]
    [InlineData(ForeignPrograms.Aarch64, "ELF64 aarch64")]
    public async Task Create_refuses_a_foreign_program_naming_its_architecture_and_leaves_no_child(string program, string architecture)
    {
        var path = ForeignPrograms.PathOf(program);

        var ex = await Assert.ThrowsAsync<ForeignArchitectureException>(() => CreateFile(path, [path]));

        Assert.Equal(architecture, ex.Architecture);
        Assert.Equal($"unsupported architecture: {architecture}; ProcHex controls x86-64 processes only", ex.Message);
        AssertNoChildButTheOwnersWakeProcess();
    }

    [Fact]
    public async Task Create_of_a_script_whose_interpreter_is_i386_kills_and_reaps_the_child_after_its_exec()
    {
        // The file is a #! script, so only the image that runs after the exec (/proc/PID/exe) tells.
        var path = ForeignPrograms.PathOf(ForeignPrograms.I386Script);
        if (!ForeignPrograms.KernelRunsI386)
        {
            // This kernel has no IA32 emulation: the exec itself fails, and says so.
            var failed = await Assert.ThrowsAsync<ProcessStartException>(() => CreateFile(path, [path]));
            Assert.Contains("Exec format error", failed.Message, StringComparison.Ordinal);
            AssertNoChildButTheOwnersWakeProcess();
            return;
        }

        var ex = await Assert.ThrowsAsync<ForeignArchitectureException>(() => CreateFile(path, [path]));

        Assert.Equal("ELF32 i386", ex.Architecture);
        AssertNoChildButTheOwnersWakeProcess();
    }

    [Theory]
    [InlineData(GrabAccess.Control)]
    [InlineData(GrabAccess.ReadOnly)]
    public async Task Grab_refuses_an_i386_process_and_leaves_it_running_untouched(GrabAccess access)
    {
        if (!ForeignPrograms.KernelRunsI386)
        {
            // No i386 process can exist on a kernel without IA32 emulation: its exec fails (the probe's ENOEXEC).
            Assert.Throws<System.ComponentModel.Win32Exception>(() => System.Diagnostics.Process.Start(ForeignPrograms.PathOf(ForeignPrograms.I386)));
            return;
        }

        var victim = Untraced.StartWatched(ForeignPrograms.I386);
        TrackPid(victim.Id);
        Assert.True(await Observe.Eventually(() => Observe.Exe(victim.Id).EndsWith(ForeignPrograms.I386, StringComparison.Ordinal)));

        var ex = await Assert.ThrowsAsync<ForeignArchitectureException>(async () => await Tracer.GrabAsync(victim.Id, access, Timeout()));

        Assert.Equal("ELF32 i386", ex.Architecture);
        Assert.Equal(0, Observe.TracerPid(victim.Id));
        Assert.Equal('S', Observe.State(victim.Id));
        Assert.Null(victim.Ending);
        victim.Kill();
    }

    [Fact]
    public async Task An_exec_into_an_i386_program_loses_control_naming_the_architecture()
    {
        var i386 = ForeignPrograms.PathOf(ForeignPrograms.I386);
        var p = await CreateFile("/usr/bin/env", ["env", i386]);

        if (!ForeignPrograms.KernelRunsI386)
        {
            // The exec fails (ENOEXEC: execvp then hands the file to /bin/sh, which fails at it): control goes on
            // through whatever runs instead, and the traced run ends as an untraced one does.
            using var untraced = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("/usr/bin/env", [i386]) { RedirectStandardError = true })!;
            await untraced.WaitForExitAsync();
            Assert.NotEqual(0, untraced.ExitCode);
            Assert.Equal(ExitStatus.FromCode(untraced.ExitCode), (await new PortDriver(p).RunToEnd()).Exit);
            return;
        }

        p.Resume();
        var lost = await Next(p);

        Assert.Equal(StopKind.Lost, lost.Kind);
        Assert.Equal("process exec'd a program of an unsupported architecture: ELF32 i386", lost.Message);
        Assert.EndsWith(ForeignPrograms.I386, Observe.Exe(p.Pid), StringComparison.Ordinal);
    }

    /// <summary>The owner thread's wake process (sleep infinity) is our only child: the refused one is gone, reaped.</summary>
    private static void AssertNoChildButTheOwnersWakeProcess() =>
        Assert.All(Observe.Children(), pid => Assert.EndsWith("/sleep", Observe.Exe(pid), StringComparison.Ordinal));
}
