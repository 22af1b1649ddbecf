using Microsoft.Extensions.DependencyInjection;
using ProcHex.Ports;

namespace ProcHex.Backends.Linux.Tests;

/// <summary>services.AddProcHex() with no choice picks the backend of the OS it runs on.</summary>
[Trait("Backend", "Linux")]
public sealed class OsDefaultBackendTests
{
    [Fact]
    public async Task On_Linux_the_default_backend_is_ptrace_and_the_session_controls_a_real_program()
    {
        var services = new ServiceCollection();
        services.AddProcHex();
        await using var provider = services.BuildServiceProvider();

        Assert.IsType<LinuxTracer>(provider.GetRequiredService<IProcessTracer>());
        var session = provider.GetRequiredService<ProcHexSession>();
        var handle = await session.CreateAsync("/bin/true", ["true"]);
        Assert.Equal(VictimState.Idle, handle.State);
        session.Continue(handle);
        var note = await session.WaitForNotificationAsync(TimeSpan.FromSeconds(30));
        Assert.Equal((NotificationKind.Exited, 0), (note!.Kind, note.Exit!.Value.Code));
    }
}
