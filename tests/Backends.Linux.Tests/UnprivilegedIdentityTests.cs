using System.Globalization;
using ProcHex.Ports;
using ProcHex.Backends.Linux.Tests.Support;

namespace ProcHex.Backends.Linux.Tests;

/// <summary>
/// Issue 8: what an ordinary user meets, proved by one. <c>.ci/unprivileged</c> runs the Linux tests a second time
/// as the user prochex-ci (with <c>--filter Privilege!=Root</c>): creating works, grabbing another user's process
/// fails with the permission error and leaves it alone. As root these tests fail on purpose (root may grab
/// anything, so they would prove nothing); the root run leaves them out with <c>--filter Privilege!=Unprivileged</c>.
/// </summary>
[Trait("Backend", "Linux")]
[Trait("Privilege", "Unprivileged")]
public sealed class UnprivilegedIdentityTests : LinuxTestBase
{
    /// <summary>Set by <c>.ci/unprivileged</c>: a <c>sleep</c> it started as root.</summary>
    private const string ForeignPidVariable = "PROCHEX_FOREIGN_PID";

    // PF_KTHREAD in the flags of /proc/PID/stat (include/linux/sched.h).
    private const ulong KernelThreadFlag = 0x00200000;

    [Fact]
    [Trait("Spec", "S3")]
    [Trait("Issue", "22")]
    public async Task Grabbing_a_process_of_another_user_fails_naming_CAP_SYS_PTRACE_and_leaves_it_untouched()
    {
        Privilege.RequireUnprivileged();
        var pid = ProcessOfAnotherUser();
        var stateBefore = Observe.State(pid);

        var e = await Assert.ThrowsAsync<GrabException>(async () => await Tracer.GrabAsync(pid, GrabAccess.Control, Timeout()));
        var reason = $"permission denied: pid {pid} belongs to uid {Observe.Uid(pid)}, not to this tracer (uid {Privilege.EffectiveUid}, which lacks CAP_SYS_PTRACE)";
        Assert.Equal(reason, e.Message);
        Assert.Equal(GrabRefusalKind.AnotherUser, e.Refusal!.Kind); // issue 22 item 3
        Assert.False(e.Refusal.CallerPrivileged);

        // The same through the public API: the S3 message, and nothing registered.
        await using (var session = new ProcHexSession(Tracer, new ProcHexOptions(), TestLog.Factory))
        {
            var failed = await Assert.ThrowsAsync<GrabFailedException>(() => session.GrabAsync(pid, GrabMode.Control));
            Assert.Equal($"failed to grab pid {pid}: {reason}", failed.Message);
            Assert.Equal(GrabRefusalKind.AnotherUser, failed.Refusal!.Kind);
            Assert.Empty(session.Handles);

            // Issue 22 item 5: reading another user's process is refused too, so there is no read-only fallback.
            var neither = await Assert.ThrowsAsync<GrabFailedException>(() => session.GrabAsync(pid, GrabMode.ControlOrReadOnly));
            Assert.StartsWith($"failed to grab pid {pid}: {reason}; reading it is refused too (", neither.Message, StringComparison.Ordinal);
            Assert.Equal(GrabRefusalKind.AnotherUser, neither.Refusal!.Kind);
            Assert.Empty(session.Handles);
        }

        Assert.Equal(0, Observe.TracerPid(pid));
        Assert.NotEqual('t', Observe.State(pid));
        Assert.Equal(stateBefore is 'T', Observe.State(pid) is 'T');
    }

    [Fact]
    [Trait("Spec", "S1")]
    [Trait("Spec", "S14")]
    public async Task Creating_a_program_as_an_unprivileged_user_runs_it_to_completion_with_every_breakpoint_hit()
    {
        Privilege.RequireUnprivileged();
        await using var session = new ProcHexSession(Tracer, new ProcHexOptions(), TestLog.Factory);
        var path = FixturePrograms.PathOf("loop");

        var handle = await session.CreateAsync(path, [path, "40", "7"], new CreateOptions { StopAt = Rendezvous.Main });
        TrackPid(handle.Pid);
        Assert.Equal(VictimState.Idle, handle.State);
        Assert.Equal(Privilege.EffectiveUid, Observe.Uid(handle.Pid));
        Assert.True(Directory.Exists($"/proc/{Environment.ProcessId}/task/{Observe.TracerPid(handle.Pid)}"), "not traced by this process");

        var hits = 0;
        await session.SetBreakpointAsync(handle, "a.out`work", _ => hits++);
        session.Continue(handle);
        var note = await session.WaitForNotificationAsync(TimeSpan.FromSeconds(30));

        Assert.Equal((NotificationKind.Exited, 7), (note!.Kind, note.Exit!.Value.Code));
        Assert.Equal(40, hits);
    }

    [Fact]
    [Trait("Spec", "S4")]
    public async Task A_read_only_grab_of_another_users_process_stops_nothing_and_reading_it_is_a_typed_error()
    {
        Privilege.RequireUnprivileged();
        var pid = ProcessOfAnotherUser();
        var stateBefore = Observe.State(pid);
        await using var session = new ProcHexSession(Tracer, new ProcHexOptions(), TestLog.Factory);

        // S4 reads lazily: the grab itself asks the kernel nothing; the first read meets the permission check.
        var handle = await session.GrabAsync(pid, GrabMode.ReadOnly);
        var e = Assert.Throws<ProcHexException>(() => handle.Objects);

        Assert.StartsWith($"cannot read the mappings of pid {pid}: ", e.Message, StringComparison.Ordinal);
        Assert.Contains("denied", e.Message, StringComparison.Ordinal);
        await session.ReleaseAsync(handle);
        Assert.Equal(0, Observe.TracerPid(pid));
        Assert.Equal(stateBefore is 'T', Observe.State(pid) is 'T');
    }

    /// <summary>
    /// A process of another user that no one traces and that is not a kernel thread: the <c>sleep</c> CI started as
    /// root, else pid 1, else the first such process in /proc.
    /// </summary>
    private static int ProcessOfAnotherUser()
    {
        var candidates = new List<int>();
        if (Environment.GetEnvironmentVariable(ForeignPidVariable) is { Length: > 0 } given)
        {
            var pid = int.Parse(given, CultureInfo.InvariantCulture);
            Assert.True(IsForeign(pid), $"{ForeignPidVariable}={pid} is not a live, untraced process of another user");
            return pid;
        }

        candidates.Add(1);
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), CultureInfo.InvariantCulture, out var pid))
            {
                candidates.Add(pid);
            }
        }

        var found = candidates.FirstOrDefault(IsForeign);
        Assert.True(found != 0, $"no process of another user to grab (set {ForeignPidVariable})");
        return found;
    }

    private static bool IsForeign(int pid)
    {
        var uid = Observe.Uid(pid);
        return uid >= 0 && uid != Privilege.EffectiveUid
            && Observe.State(pid) is { } state && state is not ('Z' or 'X' or 't')
            && Observe.TracerPid(pid) == 0
            && (Flags(pid) & KernelThreadFlag) == 0;
    }

    /// <summary>The flags field (the ninth) of /proc/PID/stat; all bits set when it cannot be read.</summary>
    private static ulong Flags(int pid)
    {
        try
        {
            var text = File.ReadAllText($"/proc/{pid}/stat");
            var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
            return ulong.Parse(fields[6], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return ulong.MaxValue;
        }
    }
}
