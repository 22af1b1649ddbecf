using System.Text;
using ProcHex.Ports;

namespace ProcHex.Backends.Fake.Tests;

/// <summary>Issue 17 item 6 over the fake backend: a hit sees its thread's registers, arguments, return address and memory.</summary>
public class HitContextTests
{
    private const ulong Stack = 0x7ff0_0000_0000;
    private const ulong Text = 0x5000_0000;
    private const ulong ReturnSite = 0x40_1234;

    [Fact]
    [Trait("Issue", "17.6")]
    [Trait("Spec", "S14")]
    public void A_handler_reads_the_arguments_the_script_set_the_return_address_and_a_string_and_the_context_expires()
    {
        var kit = new TestKit();
        var image = new FakeImageBuilder($"{FakePrograms.Directory}/args")
            .Function("main")
            .Function("f")
            .Program(
                Steps.Store(Text, [.. Encoding.UTF8.GetBytes("hello, f"), 0]),
                Steps.Store(Stack, BitConverter.GetBytes(ReturnSite)),
                Steps.SetRegisters(new X64Registers { Rdi = 1, Rsi = 2, Rdx = 3, Rcx = 4, R8 = 5, R9 = Text, Rsp = Stack }),
                Steps.Call("f"),
                Steps.SetRegisters(new X64Registers { Rdi = 10, Rsi = 20, Rdx = 30, Rcx = 40, R8 = 50, R9 = Text, Rsp = Stack }),
                Steps.Call("f"),
                Steps.Exit(0))
            .Build();
        kit.Kernel.Register(image);

        var seen = new List<(ulong[] Arguments, ulong Rip, ulong ReturnAddress, string Text, bool Valid)>();
        var kept = new List<HitContext>();
        var f = 0UL;
        DeterministicScheduler.Run(
            async () =>
            {
                await using var session = new ProcHexSession(kit.Tracer);
                var handle = await session.CreateAsync(image.Path, [image.Path]);
                f = handle.LookupSymbol("a.out`f");
                await session.SetBreakpointAsync(handle, f, hit =>
                {
                    var context = hit.Context;
                    seen.Add((
                        [.. Enumerable.Range(0, 6).Select(context.Argument)],
                        context.Registers.Rip,
                        context.ReturnAddress,
                        context.ReadString(context.Argument(5)),
                        context.IsValid));
                    kept.Add(context);
                });
                session.Continue(handle);
                return await session.WaitForNotificationAsync(Timeout.InfiniteTimeSpan);
            },
            kit.Kernel,
            seed: 1);

        Assert.Equal(2, seen.Count);
        Assert.Equal([1UL, 2, 3, 4, 5, Text], seen[0].Arguments);
        Assert.Equal([10UL, 20, 30, 40, 50, Text], seen[1].Arguments);
        Assert.All(seen, s => Assert.Equal(f, s.Rip));
        Assert.All(seen, s => Assert.Equal(ReturnSite, s.ReturnAddress));
        Assert.All(seen, s => Assert.Equal("hello, f", s.Text));
        Assert.All(seen, s => Assert.True(s.Valid));

        // After its handler returned, a context refuses every use with a typed error.
        Assert.All(kept, c => Assert.False(c.IsValid));
        Assert.Throws<HitContextExpiredException>(() => kept[0].Registers);
        Assert.Throws<HitContextExpiredException>(() => kept[1].Argument(0));
        Assert.Throws<HitContextExpiredException>(() => kept[1].ReturnAddress);
        Assert.Throws<HitContextExpiredException>(() => kept[0].ReadMemory(Text, new byte[4]));
    }

    [Fact]
    [Trait("Issue", "17.6")]
    public void Registers_are_read_only_when_a_handler_asks_and_once_per_handler_call()
    {
        var kit = new TestKit();
        var plan = new FaultPlan();
        kit.Kernel.Faults = plan;
        var readsPerHit = new List<int>();
        DeterministicScheduler.Run(
            async () =>
            {
                await using var session = new ProcHexSession(kit.Tracer);
                var handle = await session.CreateAsync(kit.Programs.Loop.Path, [kit.Programs.Loop.Path, "6"]);
                var hits = 0;
                await session.SetBreakpointAsync(handle, "a.out`work", hit =>
                {
                    // Every other hit looks at its context (three times); the rest only count.
                    if (++hits % 2 == 0)
                    {
                        _ = hit.Context.Registers.Rip + hit.Context.Argument(0) + hit.Context.Registers.Rsp;
                    }

                    readsPerHit.Add(plan.Calls(FakeOperation.ReadRegisters));
                });
                session.Continue(handle);
                return await session.WaitForNotificationAsync(Timeout.InfiniteTimeSpan);
            },
            kit.Kernel,
            seed: 3);

        Assert.Equal([0, 1, 1, 2, 2, 3], readsPerHit);
    }

    [Fact]
    [Trait("Issue", "17.6")]
    public void Registers_the_OS_will_not_give_fail_the_use_with_the_OS_reason_not_the_hit()
    {
        var kit = new TestKit();
        kit.Kernel.Faults = new FaultPlan().FailAlways(FakeOperation.ReadRegisters, Errno.ESRCH);
        var failures = new List<Exception>();
        var status = DeterministicScheduler.Run(
            async () =>
            {
                await using var session = new ProcHexSession(kit.Tracer);
                var handle = await session.CreateAsync(kit.Programs.Loop.Path, [kit.Programs.Loop.Path, "2"]);
                await session.SetBreakpointAsync(handle, "a.out`work", hit => failures.Add(Record.Exception(() => hit.Context.Argument(0))!));
                session.Continue(handle);
                return (await session.WaitForNotificationAsync(Timeout.InfiniteTimeSpan))?.Exit;
            },
            kit.Kernel,
            seed: 4);

        Assert.Equal(ExitStatus.FromCode(0), status);
        Assert.Equal(2, failures.Count);
        Assert.All(failures, e => Assert.Equal(Errno.ESRCH, Assert.IsType<ProcHexException>(e).ErrorNumber));
    }

    [Fact]
    [Trait("Issue", "17.6")]
    public void A_hit_made_by_hand_has_no_context_and_says_so()
    {
        var hit = default(BreakpointHit);

        var error = Assert.Throws<HitContextExpiredException>(() => hit.Context.Registers);
        Assert.Contains("no context", error.Message, StringComparison.Ordinal);
        Assert.IsAssignableFrom<ObjectDisposedException>(error);
    }
}
