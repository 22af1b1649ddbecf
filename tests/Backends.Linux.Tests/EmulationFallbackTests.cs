using System.Globalization;
using System.Runtime.InteropServices;
using ProcHex.Backends.Linux.Tests.Support;

namespace ProcHex.Backends.Linux.Tests;

/// <summary>Issue 17 item 5 on a real victim: an emulated push whose store the kernel refuses is stepped out of line, not re-hit forever.</summary>
[Trait("Backend", "Linux")]
public sealed partial class EmulationFallbackTests : LinuxTestBase
{
    private const int Calls = 20;
    private const int RLIMIT_STACK = 3;

    /// <summary>
    /// The stackgrow fixture (see its header) calls pusher() with rsp one word above the bottom of a MAP_GROWSDOWN stack
    /// as large as our RLIMIT_STACK: the CPU's fault on push %rbp grows the victim's stack, our /proc/PID/mem write of
    /// the same store gets EIO, every call. That is the real case (a push just below a stack not grown yet, refused to
    /// the tracer), made certain instead of waited for; a page we merely mprotect would not do, since ptrace's forced
    /// write goes through read-only private pages.
    /// </summary>
    [Fact]
    [Trait("Issue", "17.5")]
    [Trait("Spec", "S14")]
    public async Task A_push_below_a_stack_the_tracer_may_not_grow_is_stepped_out_of_line_every_hit_counted_once_said_once()
    {
        var limit = StackLimit();
        var log = new ListLoggerFactory();
        await using var session = new ProcHexSession(new LinuxTracer(new LinuxBackendOptions { EmulateStepOver = true }, log), new ProcHexOptions(), log);
        var path = FixturePrograms.PathOf("stackgrow");
        var handle = await session.CreateAsync(
            path,
            [path, Calls.ToString(CultureInfo.InvariantCulture), limit.ToString(CultureInfo.InvariantCulture)],
            new CreateOptions { StopAt = Rendezvous.Main });
        TrackPid(handle.Pid);
        var pusher = handle.LookupSymbol("a.out`pusher");
        var hits = 0;
        await session.SetBreakpointAsync(handle, pusher, _ => hits++);

        session.Continue(handle);
        var note = await session.WaitForNotificationAsync(TimeSpan.FromSeconds(30));

        // Exit 0: every call ran its push once and returned its argument + 1 (a livelock never gets here).
        Assert.True(note is not null, "the victim did not exit within 30 s: a breakpoint hit over and over?");
        Assert.Equal((NotificationKind.Exited, 0), (note!.Kind, note.Exit!.Value.Code));
        Assert.Equal(Calls, hits);
        var said = Assert.Single(log.Entries, e => e.Id == 14);
        Assert.Contains($"0x{pusher:x}", said.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// A store through a wild frame pointer (the badframe fixture): the emulated store fails, the out-of-line step
    /// faults, and the victim dies of its SIGSEGV after one hit, as it would untraced: neither the trap nor the step
    /// is retried forever.
    /// </summary>
    [Fact]
    [Trait("Issue", "17.5")]
    [Trait("Spec", "S14")]
    public async Task A_store_through_a_wild_frame_pointer_dies_of_its_own_fault_after_one_hit()
    {
        var log = new ListLoggerFactory();
        await using var session = new ProcHexSession(new LinuxTracer(new LinuxBackendOptions { EmulateStepOver = true }, log), new ProcHexOptions(), log);
        var path = FixturePrograms.PathOf("badframe");
        var handle = await session.CreateAsync(path, [path], new CreateOptions { StopAt = Rendezvous.Main });
        TrackPid(handle.Pid);
        var hits = 0;
        await session.SetBreakpointAsync(handle, "a.out`bad_store", _ => hits++);

        session.Continue(handle);
        var note = await session.WaitForNotificationAsync(TimeSpan.FromSeconds(30));

        Assert.True(note is not null, "the victim did not end within 30 s: a breakpoint or a step retried forever?");
        Assert.Equal((NotificationKind.Exited, 11), (note.Kind, note.Exit!.Value.Signal));
        Assert.Equal(1, hits);
        Assert.Single(log.Entries, e => e.Id == 14);
    }

    /// <summary>Our soft RLIMIT_STACK, made finite (8 MiB, the usual default) if it was not: the fixture's stack must fill it.</summary>
    private static ulong StackLimit()
    {
        Assert.Equal(0, GetRLimit(RLIMIT_STACK, out var limit));
        if (limit.Current == ulong.MaxValue)
        {
            limit.Current = Math.Min(8UL << 20, limit.Maximum);
            Assert.Equal(0, SetRLimit(RLIMIT_STACK, limit));
        }

        return limit.Current;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    [LibraryImport("libc", EntryPoint = "getrlimit")]
    private static partial int GetRLimit(int resource, out RLimit limit);

    [LibraryImport("libc", EntryPoint = "setrlimit")]
    private static partial int SetRLimit(int resource, in RLimit limit);
}
