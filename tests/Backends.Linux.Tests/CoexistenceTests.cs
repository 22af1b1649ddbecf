using System.Diagnostics;
using ProcHex.PortContract;
using ProcHex.Ports;
using ProcHex.Backends.Linux.Tests.Support;

namespace ProcHex.Backends.Linux.Tests;

[Trait("Backend", "Linux")]
public sealed class CoexistenceTests : LinuxTestBase
{
    [Fact]
    [Trait("Spec", "S14")]
    public async Task Process_Start_beside_traced_victims_loses_no_stop()
    {
        using var stop = new CancellationTokenSource();
        var started = 0;
        var spawner = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var p = Process.Start("/bin/true");
                await p.WaitForExitAsync();
                Assert.Equal(0, p.ExitCode);
                started++;
            }
        });

        var victims = new List<(ITracedProcess Process, PortDriver Runner, int Expected)>();
        foreach (var (program, n) in new[] { ("loop", 3000), ("loop", 2000), ("threads", 4000) })
        {
            var p = await Create(program, n.ToString(System.Globalization.CultureInfo.InvariantCulture));
            var runner = new PortDriver(p);
            runner.Plant(BreakpointTests.WorkAddress(p, program));
            victims.Add((p, runner, n));
        }

        var ends = await Task.WhenAll(victims.Select(v => v.Runner.RunToEnd(120)));
        await stop.CancelAsync();
        await spawner;

        Assert.All(ends, e => Assert.Equal(ExitStatus.FromCode(0), e.Exit));
        Assert.All(victims, v => Assert.Equal(v.Expected, v.Runner.Hits));
        Assert.True(started > 5, $"only {started} Process.Start calls ran");
    }

    [Theory]
    [Trait("Spec", "S1")]
    [InlineData(50)]
    [InlineData(1000)]
    public async Task Many_victims_share_one_owner_thread(int count)
    {
        var victims = new List<ITracedProcess>();
        for (var i = 0; i < count; i++)
        {
            victims.Add(await Create("loop", "5", "3"));
        }

        var ends = await Task.WhenAll(victims.Select(v => new PortDriver(v).RunToEnd()));
        Assert.All(ends, e => Assert.Equal(ExitStatus.FromCode(3), e.Exit));
    }
}
