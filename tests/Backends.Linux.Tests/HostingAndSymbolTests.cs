using Microsoft.Extensions.DependencyInjection;
using ProcHex.PortContract;
using ProcHex.Ports;
using ProcHex.Scenarios;
using ProcHex.Backends.Linux.Tests.Support;

namespace ProcHex.Backends.Linux.Tests;

[Trait("Backend", "Linux")]
public sealed class HostingAndSymbolTests : LinuxTestBase
{
    [Fact]
    public void UseLinux_registers_the_ptrace_tracer()
    {
        var services = new ServiceCollection();
        services.AddProcHex(b => b.UseLinux());
        using var provider = services.BuildServiceProvider();
        var tracer = provider.GetRequiredService<IProcessTracer>();
        Assert.IsType<LinuxTracer>(tracer);
        Assert.Equal("linux", tracer.Name);
    }

    [Fact]
    [Trait("Spec", "S12")]
    public async Task The_symbol_table_finds_what_nm_finds()
    {
        var p = await Create("loop", "3");
        Assert.True(p.Symbols.TryLookup("a.out", "work", out var work));
        Assert.Equal(BreakpointTests.WorkAddress(p, "loop"), work);
        Assert.Equal(ExitStatus.FromCode(0), (await new PortDriver(p).RunToEnd()).Exit);
    }

    [Fact]
    [Trait("Spec", "S16")]
    public async Task Scenario_backend_observes_and_checks_text()
    {
        await using var backend = new LinuxScenarioBackend();
        var pid = backend.Spawn(ProgramKind.Sleeper);
        TrackPid(pid);
        await backend.WaitUntilAsync(pid, o => o.Exists && !o.Stopped);
        await GrabTests.WaitForMapping(pid, "sleeper");
        var p = await Grab(pid);
        Assert.True(backend.Observe(pid).Traced);
        var patch = p.PlantBreakpoint(BreakpointTests.WorkAddress(p, "sleeper"));
        Assert.False(backend.TextIsOriginal(pid));
        p.RemoveBreakpoint(patch);
        Assert.True(backend.TextIsOriginal(pid));
        var before = backend.ReadCallCounter(p);
        p.Release(ReleaseMode.Run);
        await backend.WaitUntilAsync(pid, o => !o.Traced);
        Assert.True(await Observe.Eventually(() => Observe.ReadLong(pid, Observe.LoadBias(pid, FixturePrograms.PathOf("sleeper")) + FixturePrograms.Symbol("sleeper", "calls")) > before));
    }
}
