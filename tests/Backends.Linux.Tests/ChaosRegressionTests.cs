using System.Globalization;
using ProcHex.Ports;
using ProcHex.Backends.Linux.Tests.Support;

namespace ProcHex.Backends.Linux.Tests;

/// <summary>Bugs the chaos runner (src/Chaos) found on real victims, each reduced to its smallest reproduction.</summary>
[Trait("Backend", "Linux")]
public sealed class ChaosRegressionTests : LinuxTestBase
{
    private const int SIGKILL = 9;

    /// <summary>
    /// chaos seed 5 (pid still traced by us after teardown): a victim killed from outside while its vfork child
    /// waited, collected and stopped, for the core's next Resume. The child stayed traced and stopped for good.
    /// </summary>
    [Fact]
    [Trait("Spec", "S9")]
    public async Task A_vfork_child_is_let_go_when_its_parent_is_killed_before_the_next_resume()
    {
        var p = await Create("vfork", "1");
        p.Resume();
        StopEvent stop;
        while ((stop = await Next(p)).Reason != StopReason.ForkStarting)
        {
            Assert.Equal(StopKind.Stopped, stop.Kind);
            p.Resume();
        }

        var child = ChildrenOf(p.Pid).Single();
        Assert.NotEqual(0, Observe.TracerPid(child));
        Assert.Equal(0, Kill(p.Pid, SIGKILL));
        Assert.Equal(StopKind.Exited, (await Next(p)).Kind);
        p.Release(ReleaseMode.Kill);
        TrackPid(child);
        Assert.True(
            await Observe.Eventually(() => Observe.State(child) is null or 'Z' || Observe.TracerPid(child) == 0),
            $"the vfork child {child} is still traced (state {Observe.State(child)})");
    }

    /// <summary>
    /// A fork storm killed on release at random moments: a child the kernel attached to us at a fork whose event was
    /// still unread must not stay traced and stopped once its parent is gone.
    /// </summary>
    [Fact]
    [Trait("Spec", "S9")]
    public async Task Killing_a_victim_in_a_fork_storm_leaves_no_child_traced()
    {
        // A grabbed bystander, whose parent nobody traces, must stay ours throughout.
        using var untraced = Untraced.Start("sleeper");
        var bystander = await Grab(untraced.Id);
        bystander.Resume();
        var random = new Random(8);
        var owner = 0;
        for (var i = 0; i < 20; i++)
        {
            var p = await Create("forkstorm");
            owner = Observe.TracerPid(p.Pid);
            p.Resume();
            var until = System.Diagnostics.Stopwatch.StartNew();
            var window = random.Next(1, 30);
            while (until.ElapsedMilliseconds < window)
            {
                _ = await Next(p);
                p.Resume();
            }

            p.Release(ReleaseMode.Kill);
        }

        Assert.True(
            await Observe.Eventually(() => TracedBy(owner, "forkstorm").Count == 0),
            $"fork children still traced: {string.Join(", ", TracedBy(owner, "forkstorm"))}");
        Assert.Equal(owner, Observe.TracerPid(bystander.Pid));
        bystander.RequestStop();
        Assert.Equal(StopReason.Interrupted, (await Next(bystander)).Reason);
        bystander.Release(ReleaseMode.Run);
    }

    /// <summary>
    /// Found by the S20 churn test: a victim killed on release while a thread was being born. The kill swallowed the
    /// clone event, so the new thread was unknown to us, yet traced by us; its zombie had to be reaped before the
    /// leader's, and waiting for the leader alone blocked the owner thread (and every victim on it) for good.
    /// </summary>
    [Fact]
    [Trait("Spec", "S9")]
    public async Task Killing_a_victim_while_it_creates_threads_reaps_every_thread_without_blocking()
    {
        var random = new Random(11);
        for (var i = 0; i < 25; i++)
        {
            var p = await Create("churn");
            p.Resume();
            await Task.Delay(random.Next(1, 20));
            var release = Task.Run(() => p.Release(ReleaseMode.Kill));
            if (await Task.WhenAny(release, Task.Delay(TimeSpan.FromSeconds(20))) != release)
            {
                Assert.Fail($"round {i}: releasing (kill) pid {p.Pid} blocks; its threads: {string.Join(", ", Directory.EnumerateDirectories($"/proc/{p.Pid}/task").Select(Path.GetFileName))}");
            }

            await release;
            Assert.True(await Observe.Eventually(() => Observe.State(p.Pid) is null), $"round {i}: pid {p.Pid} is not reaped");
        }
    }

    private static List<int> TracedBy(int tracer, string command)
    {
        var traced = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                && Observe.TracerPid(pid) == tracer && ReadComm(pid) == command)
            {
                traced.Add(pid);
            }
        }

        return traced;
    }

    private static string? ReadComm(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/comm").Trim();
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static List<int> ChildrenOf(int pid)
    {
        var children = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var candidate))
            {
                try
                {
                    var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                    var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                    if (int.Parse(fields[1], CultureInfo.InvariantCulture) == pid)
                    {
                        children.Add(candidate);
                    }
                }
                catch (IOException)
                {
                }
            }
        }

        return children;
    }
}
