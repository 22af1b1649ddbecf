using NSubstitute;
using ProcHex.Ports;

namespace ProcHex.Core.Tests;

/// <summary>Issue 17 item 6, the hot path: a hit whose handler leaves its context alone costs no register read and no allocation.</summary>
public class HitContextTests
{
    [Fact]
    [Trait("Issue", "17.6")]
    public void Opening_handing_out_and_closing_a_context_per_hit_allocates_nothing_and_reads_nothing()
    {
        var process = Substitute.For<ITracedProcess>();
        var scope = new HitScope(process);
        long sum = 0;
        Hit(scope, ref sum); // JIT and first-call costs out of the way

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++)
        {
            Hit(scope, ref sum);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Empty(process.ReceivedCalls());
        Assert.Equal(10_001 * 42, sum);
    }

    [Fact]
    [Trait("Issue", "17.6")]
    public void Registers_are_read_once_per_hit_however_often_they_are_used_and_a_closed_context_refuses()
    {
        var process = Substitute.For<ITracedProcess>();
        process.ReadRegisters(7).Returns(new X64Registers { Rdi = 1, Rsi = 2, Rdx = 3, Rcx = 4, R8 = 5, R9 = 6, Rip = 0x1000 });
        var scope = new HitScope(process);

        var context = scope.Open(7);
        var arguments = Enumerable.Range(0, 6).Select(context.Argument).ToArray();
        var rip = context.Registers.Rip;
        scope.Close();

        Assert.Equal([1UL, 2, 3, 4, 5, 6], arguments);
        Assert.Equal(0x1000UL, rip);
        process.Received(1).ReadRegisters(7);
        Assert.Throws<ArgumentOutOfRangeException>(() => new X64Registers().IntegerArgument(6));
        Assert.Throws<HitContextExpiredException>(() => context.Registers);

        // The next hit's context is a new one; the old one stays expired.
        var next = scope.Open(7);
        Assert.True(next.IsValid);
        Assert.False(context.IsValid);
        Assert.NotEqual(context, next);
    }

    private static void Hit(HitScope scope, ref long sum)
    {
        var context = scope.Open(threadId: 7);
        try
        {
            var hit = new BreakpointHit(null!, 0x1000, 7, 1) { Context = context };
            sum += hit.Context.IsValid ? 42 : 0;
        }
        finally
        {
            scope.Close();
        }
    }
}
