using ProcHex.Ports;
using ProcHex.Backends.Linux.Tests.Support;

namespace ProcHex.Backends.Linux.Tests;

[Trait("Backend", "Linux")]
public sealed class InteropTests : LinuxTestBase
{
    [Fact]
    public void Errno_becomes_a_tracer_exception_a_user_can_read()
    {
        var gone = Interop.Sys.Failure("cannot stop thread 42", Interop.Errno.ESRCH);
        Assert.True(gone.IsGone);
        Assert.Equal(TracerErrorKind.Gone, gone.Kind);
        Assert.Equal(Interop.Errno.ESRCH, gone.ErrorNumber);
        Assert.Equal("cannot stop thread 42: No such process", gone.Message);

        var denied = Interop.Sys.Failure("cannot trace pid 1", Interop.Errno.EPERM);
        Assert.False(denied.IsGone);
        Assert.Equal(TracerErrorKind.PermissionDenied, denied.Kind);
        Assert.Equal(TracerErrorKind.Interrupted, Interop.Sys.Failure("waitpid", Interop.Errno.EINTR).Kind);
        Assert.Equal(TracerErrorKind.BadAddress, Interop.Sys.Failure("read", Interop.Errno.EFAULT).Kind);
        Assert.Equal(TracerErrorKind.Failed, Interop.Sys.Failure("odd", 1234).Kind);
        Assert.Equal("cannot trace pid 1: Operation not permitted", denied.Message);
    }

    [Fact]
    public void Wait_statuses_decode_like_sys_wait_h()
    {
        Assert.Equal(ExitStatus.FromCode(42), new WaitStatus(42 << 8).ToExitStatus());
        Assert.Equal(ExitStatus.FromSignal(11, coreDumped: true), new WaitStatus(11 | 0x80).ToExitStatus());
        var exec = new WaitStatus((Interop.Sys.PTRACE_EVENT_EXEC << 16) | (5 << 8) | 0x7f);
        Assert.True(exec.Stopped);
        Assert.Equal(5, exec.StopSignal);
        Assert.Equal(Interop.Sys.PTRACE_EVENT_EXEC, exec.Event);
    }

    /// <summary>
    /// The kernel fact the unseen-exec detection rests on (S16; LinuxProcess.OnImageGone): /proc/PID/mem opened
    /// before an exec moves nothing after it (mem_rw returns 0 once the old mm has no users), where an unmapped
    /// address of a live image fails with EIO. The fake kernel models the same (FakeLinuxKernel.Seam ProcMemFile).
    /// </summary>
    [Fact]
    [Trait("Spec", "S16")]
    public void A_memory_file_opened_before_an_exec_reports_the_image_gone_after_it()
    {
        using var shell = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("/bin/sh", ["-c", "read line; exec sleep 30"])
        {
            RedirectStandardInput = true,
        })!;
        try
        {
            var pid = shell.Id;
            var stack = Convert.ToUInt64(File.ReadAllLines($"/proc/{pid}/maps").First(l => l.EndsWith("[stack]", StringComparison.Ordinal)).Split('-')[0], 16);
            var gone = 0;
            using var memory = new MemoryFile(LinuxKernel.Instance, pid, () => gone++);
            var one = new byte[1];
            Assert.Equal(1, memory.Read(stack, one));

            shell.StandardInput.WriteLine("go");
            shell.StandardInput.Flush();
            SpinWait.SpinUntil(() => File.ReadAllText($"/proc/{pid}/comm").Trim() == "sleep", TimeSpan.FromSeconds(30));
            Assert.Equal("sleep", File.ReadAllText($"/proc/{pid}/comm").Trim());

            var failure = Assert.Throws<TracerException>(() => memory.Read(stack, one));
            Assert.True(failure.IsGone);
            Assert.Contains("the image it had is gone", failure.Message, StringComparison.Ordinal);
            Assert.Throws<TracerException>(() => memory.Write(stack, one));
            Assert.Equal(2, gone);

            using var fresh = new MemoryFile(LinuxKernel.Instance, pid, () => gone++);
            var unmapped = Assert.Throws<TracerException>(() => fresh.Read(0x1000, one));
            Assert.False(unmapped.IsGone);
            Assert.Equal(2, gone);
        }
        finally
        {
            shell.Kill();
            shell.WaitForExit();
        }
    }

    [Fact]
    public void The_interpreter_of_an_elf_and_a_script_is_found()
    {
        Assert.Equal("/bin/sh", ExecutableCheck.Interpreter("#!/bin/sh -e\necho\n"u8));
        Assert.StartsWith("/lib64/ld-linux", ExecutableCheck.Interpreter(File.ReadAllBytes(FixturePrograms.PathOf("loop")).AsSpan(0, 4096)), StringComparison.Ordinal);
    }

    [Fact]
    [Trait("Spec", "S9")]
    public async Task Releasing_a_running_multithreaded_victim_detaches_every_thread()
    {
        var p = await Create("threads", "1000000000000");
        var work = BreakpointTests.WorkAddress(p, "threads");
        var original = new byte[1];
        p.ReadMemory(work, original);
        var patch = p.PlantBreakpoint(work);
        p.Resume();
        for (var i = 0; i < 20; i++)
        {
            var e = await Next(p);
            if (e.Reason == StopReason.Breakpoint)
            {
                p.StepOverBreakpoint(e.ThreadId, patch);
            }

            p.Resume();
        }

        p.Release(ReleaseMode.Run);
        Assert.Equal(original[0], Observe.Memory(p.Pid, work, 1)[0]);
        foreach (var task in Directory.GetDirectories($"/proc/{p.Pid}/task"))
        {
            Assert.Equal(0, Observe.TracerPid(int.Parse(Path.GetFileName(task), System.Globalization.CultureInfo.InvariantCulture)));
        }

        Assert.True(await Observe.Eventually(() => Observe.State(p.Pid) is 'R' or 'S'));
        Assert.Equal(0, Kill(p.Pid, 9));
    }
}
