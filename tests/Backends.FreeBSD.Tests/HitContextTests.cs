using System.Text;
using ProcHex.Backends.FreeBSD.Tests.FakeKernel;

namespace ProcHex.Backends.FreeBSD.Tests;

/// <summary>Issue 17 item 6 on the FreeBSD adapter over its kernel fake: PT_GETREGS feeds a hit's context.</summary>
[Trait("Backend", "FreeBSD")]
public abstract class HitContextTests(FakeAttach attach)
{
    private const ulong Caller = FakePrograms.Main + 0x17;

    [Fact]
    [Trait("Issue", "17.6")]
    [Trait("Spec", "S14")]
    public async Task A_handler_reads_six_arguments_the_return_address_and_a_string_and_the_context_expires()
    {
        var kernel = new FakeFreeBsdKernel(attach);
        var text = FakeFreeBsdKernel.ScratchPage;
        kernel.AddFile(FakePrograms.Image(
            FakePrograms.Loop,
            new Call(FakePrograms.Main),
            new Call(FakePrograms.Work, Arguments: [1, 2, 3, 4, 5, text], ReturnAddress: Caller),
            new Call(FakePrograms.Work, Arguments: [6, 5, 4, 3, 2, text], ReturnAddress: Caller + 8),
            new Exit(0)));
        await using var session = new ProcHexSession(new FreeBsdTracer(kernel));
        var handle = await session.CreateAsync(FakePrograms.Loop, ["loop"], new CreateOptions { StopAt = Rendezvous.Create });
        var fake = kernel.Process(handle.Pid);
        foreach (var (b, i) in Encoding.UTF8.GetBytes("hit context\0").Select((b, i) => (b, i)))
        {
            Assert.True(fake.Memory.TryWrite(text + (ulong)i, b));
        }

        var seen = new List<(ulong[] Arguments, ulong Rip, ulong Rsp, ulong ReturnAddress, string Text)>();
        var kept = new List<HitContext>();
        await session.SetBreakpointAsync(handle, FakePrograms.Work, hit =>
        {
            var c = hit.Context;
            seen.Add(([.. Enumerable.Range(0, 6).Select(c.Argument)], c.Registers.Rip, c.Registers.Rsp, c.ReturnAddress, c.ReadString(c.Argument(5))));
            kept.Add(c);
        });
        session.Continue(handle);
        var note = await session.WaitForNotificationAsync(TimeSpan.FromSeconds(30));

        Assert.Equal((NotificationKind.Exited, 0), (note!.Kind, note.Exit!.Value.Code));
        Assert.Equal(2, seen.Count);
        Assert.Equal([1UL, 2, 3, 4, 5, text], seen[0].Arguments);
        Assert.Equal([6UL, 5, 4, 3, 2, text], seen[1].Arguments);
        Assert.All(seen, s => Assert.Equal(FakePrograms.Work, s.Rip));
        Assert.All(seen, s => Assert.Equal(FakeFreeBsdKernel.StackTop, s.Rsp));
        Assert.Equal([Caller, Caller + 8], seen.Select(s => s.ReturnAddress));
        Assert.All(seen, s => Assert.Equal("hit context", s.Text));
        Assert.All(kept, c => Assert.Throws<HitContextExpiredException>(() => c.Argument(0)));
        Assert.Throws<HitContextExpiredException>(() => kept[0].ReadMemory(text, new byte[1]));
        Assert.Empty(kernel.Violations);
    }
}

/// <summary>The same tests with FreeBSD 14's classic PT_ATTACH.</summary>
public sealed class HitContextTestsClassicAttach() : HitContextTests(FakeAttach.Classic);

/// <summary>The same tests with transparent attach (debug.ptrace_attach_transparent).</summary>
public sealed class HitContextTestsTransparentAttach() : HitContextTests(FakeAttach.Transparent);
