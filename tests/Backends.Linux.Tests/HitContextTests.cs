using ProcHex.Ports;
using ProcHex.Backends.Linux.Tests.Support;

namespace ProcHex.Backends.Linux.Tests;

/// <summary>Issue 17 item 6 on real victims: a handler reads the stopped thread's registers, arguments, return address and memory.</summary>
[Trait("Backend", "Linux")]
public sealed class HitContextTests : LinuxTestBase
{
    private const int Calls = 3;

    private static ProcHexSession NewSession() => new(new LinuxTracer(TestLog.Factory), new ProcHexOptions(), TestLog.Factory);

    [Fact]
    [Trait("Issue", "17.6")]
    [Trait("Spec", "S14")]
    public async Task A_handler_reads_six_arguments_the_return_address_into_the_caller_and_a_string_argument()
    {
        await using var session = NewSession();
        var path = FixturePrograms.PathOf("hitargs");
        var handle = await session.CreateAsync(path, [path, Calls.ToString(System.Globalization.CultureInfo.InvariantCulture)], new CreateOptions { StopAt = Rendezvous.Main });
        TrackPid(handle.Pid);
        var six = handle.LookupSymbol("a.out`six");
        var arguments = new List<ulong[]>();
        var rips = new List<ulong>();
        var returns = new List<SymbolLocation?>();
        var names = new List<string>();
        var kept = new List<HitContext>();
        await session.SetBreakpointAsync(handle, six, hit =>
        {
            arguments.Add([.. Enumerable.Range(0, 6).Select(hit.Context.Argument)]);
            rips.Add(hit.Context.Registers.Rip);
            returns.Add(hit.Handle.ResolveAddress(hit.Context.ReturnAddress));
            kept.Add(hit.Context);
        });
        await session.SetBreakpointAsync(handle, "a.out`named", hit =>
        {
            names.Add(hit.Context.ReadString(hit.Context.Argument(0)));
            kept.Add(hit.Context);
        });

        session.Continue(handle);
        var note = await session.WaitForNotificationAsync(TimeSpan.FromSeconds(30));

        Assert.Equal((NotificationKind.Exited, 0), (note!.Kind, note.Exit!.Value.Code));
        Assert.Equal(Calls, arguments.Count);
        Assert.All(arguments, a => Assert.Equal([1UL, 2, 3, 4, 5, 6], a));
        Assert.All(rips, rip => Assert.Equal(six, rip));
        Assert.All(returns, r => Assert.Equal(("hitargs", "main"), (r?.ObjectName, r?.Symbol)));
        Assert.All(returns, r => Assert.NotEqual(0UL, r!.Value.Offset));
        Assert.Equal(Enumerable.Repeat("hit context", Calls), names);

        // Kept past its handler, a context is expired: every use throws the typed error, which is an ObjectDisposedException.
        Assert.Equal(2 * Calls, kept.Count);
        Assert.All(kept, c => Assert.False(c.IsValid));
        Assert.Throws<HitContextExpiredException>(() => kept[0].Registers);
        Assert.Throws<HitContextExpiredException>(() => kept[0].ReturnAddress);
        Assert.Throws<HitContextExpiredException>(() => kept[^1].ReadString(0));
        Assert.Throws<HitContextExpiredException>(() => kept[^1].Argument(0));
    }
}
