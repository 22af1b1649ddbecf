using Microsoft.Extensions.DependencyInjection;
using ProcHex.Ports;

namespace ProcHex.Backends.Fake.Tests;

public class HostingTests
{
    [Fact]
    public void UseFake_registers_a_fake_tracer_over_the_given_kernel()
    {
        var kernel = new FakeKernel();
        var services = new ServiceCollection();

        services.AddProcHex(b => b.UseFake(kernel));
        using var provider = services.BuildServiceProvider();

        var tracer = Assert.IsType<FakeTracer>(provider.GetRequiredService<IProcessTracer>());
        Assert.Same(kernel, tracer.Kernel);
        Assert.Equal("fake", tracer.Name);
        Assert.Same(kernel, provider.GetRequiredService<FakeKernel>());
    }

    [Fact]
    public void UseFake_without_a_kernel_makes_a_fresh_one_reachable_through_the_container()
    {
        var services = new ServiceCollection();

        services.AddProcHex(b => b.UseFake());
        using var provider = services.BuildServiceProvider();

        var tracer = Assert.IsType<FakeTracer>(provider.GetRequiredService<IProcessTracer>());
        Assert.Same(provider.GetRequiredService<FakeKernel>(), tracer.Kernel);
        Assert.Empty(tracer.Kernel.Pids);
    }
}
