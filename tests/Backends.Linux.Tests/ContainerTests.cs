using System.Globalization;
using ProcHex.Backends.Linux.Tests.Support;

namespace ProcHex.Backends.Linux.Tests;

/// <summary>
/// Issue 22 item 4: processes in another pid namespace (and mount namespace), as in a container, grabbed by their
/// pid here. The handle reports both pids, and the objects of the process are read through /proc/PID/root, so a
/// path that names another file here (or none) still gives the process's own file. The namespaces are made with
/// util-linux's unshare, which needs root.
/// </summary>
[Trait("Backend", "Linux")]
[Trait("Issue", "22")]
[Trait("Privilege", "Root")] // unshare --pid needs CAP_SYS_ADMIN
public sealed class ContainerTests : LinuxTestBase
{
    [Fact]
    public async Task A_process_in_another_pid_namespace_is_grabbed_by_its_pid_here_and_reports_both_pids()
    {
        using var unshare = Untraced.StartCommand($"unshare --pid --fork --mount-proc '{FixturePrograms.PathOf("sleeper")}'");
        var pid = await ChildOf(unshare.Id, "sleeper");
        TrackPid(pid);
        await using var session = new ProcHexSession(Tracer, new ProcHexOptions(), TestLog.Factory);

        var handle = await session.GrabAsync(pid, GrabMode.Control);

        Assert.Equal(pid, handle.Pid);
        Assert.Equal(1, handle.NamespacePid);
        var hits = 0;
        await session.SetBreakpointAsync(handle, "a.out`work", _ => Interlocked.Increment(ref hits));
        session.Continue(handle);
        Assert.True(await Observe.Eventually(() => Volatile.Read(ref hits) >= 3), $"{hits} hits");
        await session.ReleaseAsync(handle);
        Assert.Equal(0, Observe.TracerPid(pid));
    }

    [Fact]
    public async Task A_process_in_another_mount_namespace_has_its_objects_read_through_its_root()
    {
        // Here, DIR/victim is a copy of /bin/true (no work symbol at all); in the process's mount namespace a tmpfs
        // on DIR holds a copy of the sleeper fixture under the same name, which it runs.
        var dir = Path.Combine(FixturePrograms.Dir, $"container-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        var victim = Path.Combine(dir, "victim");
        File.Copy("/bin/true", victim);
        var inside = $"mount -t tmpfs none '{dir}' && cp '{FixturePrograms.PathOf("sleeper")}' '{victim}' && exec '{victim}'";
        using var unshare = Untraced.StartCommand($"unshare --mount --pid --fork --mount-proc sh -c \"{inside}\"");
        var pid = await ChildOf(unshare.Id, "victim");
        await using var session = new ProcHexSession(Tracer, new ProcHexOptions(), TestLog.Factory);
        try
        {
            var handle = await session.GrabAsync(pid, GrabMode.Control);

            Assert.Equal(1, handle.NamespacePid);
            Assert.Contains(handle.Objects, o => o.Path == victim);
            var hits = 0;
            await session.SetBreakpointAsync(handle, "a.out`work", _ => Interlocked.Increment(ref hits));
            session.Continue(handle);
            Assert.True(await Observe.Eventually(() => Volatile.Read(ref hits) >= 3), $"{hits} hits");
            await session.ReleaseAsync(handle);
            Assert.Equal(0, Observe.TracerPid(pid));
            Assert.NotEqual('t', Observe.State(pid));
        }
        finally
        {
            _ = Kill(pid, 9);
        }
    }

    [Fact]
    public async Task A_tracer_reads_the_proc_file_system_where_ProcRoot_says()
    {
        // A tracer in a container sees the host's /proc where it is mounted (say /host/proc): here a link to /proc.
        var root = Path.Combine(FixturePrograms.Dir, $"hostproc-{Guid.NewGuid():N}");
        File.CreateSymbolicLink(root, "/proc");
        using var sleeper = Untraced.Start("sleeper");
        TrackPid(sleeper.Id);
        await GrabTests.WaitForMapping(sleeper.Id, "sleeper");

        var elsewhere = new Backends.Linux.LinuxTracer(new LinuxBackendOptions { ProcRoot = root + "/" }, TestLog.Factory);
        await using (var session = new ProcHexSession(elsewhere, new ProcHexOptions(), TestLog.Factory))
        {
            var handle = await session.GrabAsync(sleeper.Id, GrabMode.Control);
            Assert.Null(handle.NamespacePid);
            var hits = 0;
            await session.SetBreakpointAsync(handle, "a.out`work", _ => Interlocked.Increment(ref hits));
            session.Continue(handle);
            Assert.True(await Observe.Eventually(() => Volatile.Read(ref hits) >= 3), $"{hits} hits");
            await session.ReleaseAsync(handle);
        }

        // And nothing is read from /proc behind its back: with no proc file system at ProcRoot, there is no process.
        var nowhere = new Backends.Linux.LinuxTracer(new LinuxBackendOptions { ProcRoot = Path.Combine(FixturePrograms.Dir, "no-proc-here") }, TestLog.Factory);
        var e = await Assert.ThrowsAsync<Ports.GrabException>(async () => await nowhere.GrabAsync(sleeper.Id, Ports.GrabAccess.Control, Timeout()));
        Assert.Equal("no such process", e.Message);
    }

    /// <summary>The process <paramref name="parent"/> forked that runs a file named <paramref name="name"/>, once it has libc mapped.</summary>
    private static async Task<int> ChildOf(int parent, string name)
    {
        var found = 0;
        Assert.True(
            await Observe.Eventually(() =>
            {
                found = Directory.EnumerateDirectories("/proc")
                    .Select(d => int.TryParse(Path.GetFileName(d), CultureInfo.InvariantCulture, out var pid) ? pid : 0)
                    .FirstOrDefault(pid => pid > 0 && ParentOf(pid) == parent && Observe.Exe(pid).EndsWith("/" + name, StringComparison.Ordinal));
                return found != 0 && Observe.MappedPathContaining(found, "libc") is not null;
            }),
            $"no child of {parent} runs {name}");
        await Task.Delay(50);
        return found;
    }

    private static int ParentOf(int pid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("PPid:", StringComparison.Ordinal));
            return line is null ? 0 : int.Parse(line[5..].Trim(), CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return 0;
        }
    }
}
