using System.Globalization;
using ProcHex.Ports;
using ProcHex.Backends.Linux.Tests.Support;

namespace ProcHex.Backends.Linux.Tests;

/// <summary>
/// Issue 8, item 4: absurd arguments and misuse from many threads get a clear, typed error, never a hang or a
/// crash, and lose nothing: no victim left stopped or traced, no breakpoint byte left, no zombie (the base
/// class checks those after every test).
/// </summary>
[Trait("Backend", "Linux")]
[Trait("Timing", "Race")] // races real signals and threads: .ci/run runs this class again in a loop
public sealed class HostileInputTests : LinuxTestBase
{
    [Theory]
    [Trait("Spec", "S3")]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(int.MinValue)]
    public async Task A_pid_that_cannot_name_a_process_is_refused_in_both_modes(int pid)
    {
        await using var session = new ProcHexSession(Tracer);
        foreach (var mode in new[] { GrabMode.Control, GrabMode.ReadOnly })
        {
            var error = await Assert.ThrowsAsync<GrabFailedException>(() => session.GrabAsync(pid, mode));
            Assert.Equal($"failed to grab pid {pid}: not a process id", error.Message);
        }

        Assert.Empty(session.Handles);
    }

    [Fact]
    [Trait("Spec", "S3")]
    public async Task Our_own_pid_and_a_kernel_thread_are_refused_with_their_reasons()
    {
        await using var session = new ProcHexSession(Tracer);
        var self = Environment.ProcessId;
        Assert.Equal(
            $"failed to grab pid {self}: cannot control our own process",
            (await Assert.ThrowsAsync<GrabFailedException>(() => session.GrabAsync(self))).Message);
        Assert.Equal(
            $"failed to grab pid {self}: cannot grab our own process",
            (await Assert.ThrowsAsync<GrabFailedException>(() => session.GrabAsync(self, GrabMode.ReadOnly))).Message);

        var kernelThread = KernelThreads().First();
        foreach (var mode in new[] { GrabMode.Control, GrabMode.ReadOnly })
        {
            var error = await Assert.ThrowsAsync<GrabFailedException>(() => session.GrabAsync(kernelThread, mode));
            Assert.Equal($"failed to grab pid {kernelThread}: process is a kernel thread", error.Message);
        }

        Assert.Empty(session.Handles);
    }

    [Fact]
    [Trait("Spec", "S3")]
    public async Task A_thread_id_is_refused_and_names_its_process()
    {
        using var victim = Untraced.Start("threads", "100000000000");
        TrackPid(victim.Id);
        int thread = 0;
        Assert.True(await Observe.Eventually(() => (thread = ThreadsOf(victim.Id).FirstOrDefault(t => t != victim.Id)) != 0));
        await using var session = new ProcHexSession(Tracer);

        foreach (var mode in new[] { GrabMode.Control, GrabMode.ReadOnly })
        {
            var error = await Assert.ThrowsAsync<GrabFailedException>(() => session.GrabAsync(thread, mode));
            Assert.Equal($"failed to grab pid {thread}: pid {thread} is a thread of process {victim.Id}; grab {victim.Id}", error.Message);
        }

        Assert.Equal(0, Observe.TracerPid(victim.Id));
        Assert.Empty(session.Handles);
    }

    [Fact]
    [Trait("Spec", "S4")]
    public async Task A_read_only_grab_reads_a_process_another_tracer_holds()
    {
        var traced = await Create("sleeper");
        await using var session = new ProcHexSession(Tracer);

        var handle = await session.GrabAsync(traced.Pid, GrabMode.ReadOnly);
        Assert.Contains(handle.Objects, o => o.Path.EndsWith("/sleeper", StringComparison.Ordinal));
        await session.ReleaseAsync(handle);
        traced.Release(ReleaseMode.Kill);
    }

    [Fact]
    [Trait("Spec", "S2")]
    public async Task An_argument_list_over_the_kernels_limit_fails_to_execute_and_leaves_nothing()
    {
        await using var session = new ProcHexSession(Tracer);
        var path = FixturePrograms.PathOf("args");
        var huge = new string('x', 100_000);
        string[] argv = [path, .. Enumerable.Repeat(huge, 64)];

        var error = await Assert.ThrowsAsync<CreateFailedException>(() => session.CreateAsync(path, argv));
        Assert.Equal($"failed to execute {path}: Argument list too long", error.Message);
        Assert.Empty(session.Handles);
    }

    [Fact]
    [Trait("Spec", "S8")]
    [Trait("Spec", "S23")]
    public async Task Releases_racing_continues_and_breakpoint_changes_on_one_handle_release_once_and_lose_nothing()
    {
        using var victim = Untraced.StartWatched("sleeper");
        TrackPid(victim.Id);
        await GrabTests.WaitForMapping(victim.Id, "sleeper");
        await using var session = new ProcHexSession(Tracer);

        for (var round = 0; round < 5; round++)
        {
            ProcessHandle handle;
            try
            {
                handle = await session.GrabAsync(victim.Id);
            }
            catch (GrabFailedException e)
            {
                await Observe.Eventually(() => victim.Ending is not null);
                throw new InvalidOperationException($"round {round}: {e.Message}; the victim {victim.Ending ?? "lives"}", e);
            }

            var hits = 0;
            await session.SetBreakpointAsync(handle, "a.out`work", _ => Interlocked.Increment(ref hits));
            session.Continue(handle);

            using var start = new Barrier(8);
            var misuse = Enumerable.Range(0, 8).Select(i => Task.Run(async () =>
            {
                start.SignalAndWait();
                try
                {
                    switch (i % 4)
                    {
                        case 0:
                            await session.ReleaseAsync(handle);
                            return "released";
                        case 1:
                            session.Continue(handle);
                            return "continued";
                        case 2:
                            await session.SetBreakpointAsync(handle, "a.out`work", _ => { });
                            return "planted";
                        default:
                            using (await session.LockAsync(handle))
                            {
                                return "locked";
                            }
                    }
                }
                catch (ProcHexException e)
                {
                    return e.GetType().Name;
                }
            })).ToArray();

            var outcomes = await Task.WhenAll(misuse).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(1, outcomes.Count(o => o == "released"));
            string[] expected = ["released", "continued", "planted", "locked", nameof(InvalidHandleException)];
            Assert.True(outcomes.All(expected.Contains), string.Join(", ", outcomes));
            Assert.Empty(session.Handles);
            Assert.True(await Observe.Eventually(() => Observe.TracerPid(victim.Id) == 0), "still traced after the race");
            Assert.Empty(Observe.TextDifferences(victim.Id));
            Assert.True(victim.Ending is null && Observe.State(victim.Id) is not (null or 'Z'), $"round {round}: the victim died: {victim.Ending}");
        }

        Assert.True(await Observe.Eventually(() => Observe.State(victim.Id) is not ('T' or 't')));
    }

    /// <summary>Kernel threads, from the PF_KTHREAD flag in /proc/PID/stat.</summary>
    private static IEnumerable<int> KernelThreads()
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            string stat;
            try
            {
                stat = File.ReadAllText($"{dir}/stat");
            }
            catch (IOException)
            {
                continue;
            }

            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            if ((ulong.Parse(fields[6], CultureInfo.InvariantCulture) & 0x00200000) != 0)
            {
                yield return pid;
            }
        }
    }

    private static int[] ThreadsOf(int pid) =>
        [.. Directory.GetDirectories($"/proc/{pid}/task").Select(d => int.Parse(Path.GetFileName(d), CultureInfo.InvariantCulture))];
}
