using System.Globalization;
using ProcHex.Ports;
using ProcHex.Backends.Linux.Tests.Support;

namespace ProcHex.Backends.Linux.Tests;

/// <summary>
/// Issue 22 item 3 (a refused grab names the fact that refused it, as a typed <see cref="GrabRefusal"/>) and item 5
/// (<see cref="GrabMode.ControlOrReadOnly"/>: reading where control is refused), on real processes: another tracer's
/// tracee, a set-id and a non-dumpable process of the unprivileged tracer's own user, another user's process. The
/// kernel's decision order itself is a table over <see cref="PtracePermission.Explain"/>, Yama's scopes included
/// (a kernel without Yama, as some CI machines are, cannot show them for real).
/// </summary>
[Trait("Backend", "Linux")]
[Trait("Issue", "22")]
public sealed class GrabPermissionTests : LinuxTestBase
{
    private const UnixFileMode ReadAndExecuteForAll = UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.UserWrite
        | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    private static readonly uint[] Nobody = [65534, 65534, 65534, 65534];

    private static PtracePermission.Facts Facts(
        int tracer = 0, int? scope = 0, bool? cap = false, uint[]? callerUids = null, uint[]? targetUids = null, uint[]? targetGids = null, uint? owner = 65534) =>
        new(tracer, scope, cap, callerUids ?? Nobody, Nobody, targetUids ?? Nobody, targetGids ?? Nobody, owner);

    public static TheoryData<string, GrabRefusalKind, string> Decisions => new()
    {
        { "traced", GrabRefusalKind.AlreadyTraced, "already traced by pid 812" },
        { "scope 3", GrabRefusalKind.TracingDisabled, "permission denied: kernel.yama.ptrace_scope is 3, so no process may be traced until reboot" },
        { "root's", GrabRefusalKind.AnotherUser, "permission denied: pid 42 belongs to uid 0, not to this tracer (uid 65534, which lacks CAP_SYS_PTRACE)" },
        { "set-uid", GrabRefusalKind.SetId, "permission denied: pid 42 runs a set-id program (uids 65534/0/0, gids 65534/65534/65534) and this tracer lacks CAP_SYS_PTRACE" },
        { "non-dumpable", GrabRefusalKind.NotDumpable, "permission denied: pid 42 is not dumpable (prctl PR_SET_DUMPABLE 0) and this tracer lacks CAP_SYS_PTRACE" },
        { "scope 1", GrabRefusalKind.RestrictedBySetting, "permission denied: kernel.yama.ptrace_scope is 1 (only a process's ancestors may trace it) and this tracer lacks CAP_SYS_PTRACE" },
        { "scope 2", GrabRefusalKind.RestrictedBySetting, "permission denied: kernel.yama.ptrace_scope is 2 (only tracers with CAP_SYS_PTRACE may trace) and this tracer lacks CAP_SYS_PTRACE" },
        { "privileged", GrabRefusalKind.Unexplained, "permission denied by a security module or a user namespace, not by ownership or Yama (kernel.yama.ptrace_scope absent (no Yama), CAP_SYS_PTRACE held)" },
    };

    [Theory]
    [MemberData(nameof(Decisions))]
    public void A_refusal_names_the_fact_the_kernel_decided_on_in_the_kernels_order(string situation, GrabRefusalKind kind, string reason)
    {
        var facts = situation switch
        {
            "traced" => Facts(tracer: 812, targetUids: [0, 0, 0, 0]),
            "scope 3" => Facts(scope: 3, targetUids: [0, 0, 0, 0]),
            "root's" => Facts(scope: 1, targetUids: [0, 0, 0, 0]),
            "set-uid" => Facts(scope: 1, targetUids: [65534, 0, 0, 0], owner: 0),
            "non-dumpable" => Facts(scope: 1, owner: 0),
            "scope 1" => Facts(scope: 1),
            "scope 2" => Facts(scope: 2),
            "privileged" => Facts(scope: null, cap: true, callerUids: [0, 0, 0, 0], targetUids: [0, 0, 0, 0], owner: 0),
            _ => throw new ArgumentOutOfRangeException(nameof(situation)),
        };

        var (refusal, text) = PtracePermission.Explain(42, facts);

        Assert.Equal(kind, refusal.Kind);
        Assert.Equal(reason, text);
        Assert.Equal("kernel.yama.ptrace_scope", refusal.Setting);
        Assert.Equal(facts.Scope?.ToString(CultureInfo.InvariantCulture), refusal.SettingValue);
        Assert.Equal(facts.CallerHasCapability, refusal.CallerPrivileged);
        Assert.Equal(kind == GrabRefusalKind.AlreadyTraced ? 812 : null, refusal.TracerPid);
    }

    [Fact]
    public void The_kernel_seam_reads_the_real_ptrace_scope_and_the_callers_capability()
    {
        const string scopeFile = "/proc/sys/kernel/yama/ptrace_scope";
        int? expected = File.Exists(scopeFile) ? int.Parse(File.ReadAllText(scopeFile).Trim(), CultureInfo.InvariantCulture) : null;
        Assert.Equal(expected, LinuxKernel.Instance.PtraceScope());

        var capEff = File.ReadLines("/proc/thread-self/status").Single(l => l.StartsWith("CapEff:", StringComparison.Ordinal))[7..].Trim();
        var facts = PtracePermission.Read(LinuxKernel.Instance, Environment.ProcessId);
        Assert.Equal((ulong.Parse(capEff, NumberStyles.HexNumber, CultureInfo.InvariantCulture) & (1UL << 19)) != 0, facts.CallerHasCapability);
        Assert.Equal((uint)Privilege.EffectiveUid, facts.CallerUids![1]);
    }

    [Fact]
    public async Task A_process_another_tracer_holds_is_refused_naming_that_tracer_and_ControlOrReadOnly_reads_it_untouched()
    {
        using var traced = StartTraced(out var child);
        try
        {
            var e = await Assert.ThrowsAsync<GrabException>(async () => await Tracer.GrabAsync(child, GrabAccess.Control, Timeout()));
            Assert.Equal($"already traced by pid {traced.Id}", e.Message);
            Assert.Equal(TracerErrorKind.Busy, e.Kind);
            Assert.Equal((GrabRefusalKind.AlreadyTraced, traced.Id), (e.Refusal!.Kind, e.Refusal.TracerPid));

            await using var session = new ProcHexSession(Tracer, new ProcHexOptions(), TestLog.Factory);
            var failed = await Assert.ThrowsAsync<GrabFailedException>(() => session.GrabAsync(child, GrabMode.Control));
            Assert.Equal($"failed to grab pid {child}: already traced by pid {traced.Id}", failed.Message);
            Assert.Equal(GrabRefusalKind.AlreadyTraced, failed.Refusal!.Kind);

            var handle = await session.GrabAsync(child, GrabMode.ControlOrReadOnly);

            Assert.True(handle.IsReadOnly);
            Assert.Equal(VictimState.Observed, handle.State);
            Assert.Equal($"already traced by pid {traced.Id}", handle.ReadOnlyReason);
            Assert.Equal(traced.Id, handle.ReadOnlyRefusal!.TracerPid);
            Assert.Contains(handle.Objects, o => o.Path.EndsWith("/traced", StringComparison.Ordinal));
            var calls = handle.LookupSymbol("a.out`calls");
            var buffer = new byte[8];
            Assert.Equal(8, handle.ReadMemory(calls, buffer));
            await session.ReleaseAsync(handle);
            Assert.Equal(traced.Id, Observe.TracerPid(child));
            Assert.NotEqual('t', Observe.State(child));
        }
        finally
        {
            _ = Kill(child, 9);
        }
    }

    [Fact]
    public async Task ControlOrReadOnly_controls_a_process_it_may_control()
    {
        using var sleeper = Untraced.Start("sleeper");
        TrackPid(sleeper.Id);
        await GrabTests.WaitForMapping(sleeper.Id, "sleeper");
        await using var session = new ProcHexSession(Tracer, new ProcHexOptions(), TestLog.Factory);

        var handle = await session.GrabAsync(sleeper.Id, GrabMode.ControlOrReadOnly);

        Assert.False(handle.IsReadOnly);
        Assert.Null(handle.ReadOnlyReason);
        Assert.Equal(VictimState.Idle, handle.State);
        Assert.NotEqual(0, Observe.TracerPid(sleeper.Id));
        await session.ReleaseAsync(handle);
    }

    [Fact]
    [Trait("Privilege", "Root")] // the tracer drops to nobody (UnprivilegedOwner), and only root can start a process as nobody
    public async Task A_set_id_process_of_the_tracers_own_user_is_refused_as_set_id()
    {
        var dir = Path.Combine(FixturePrograms.Dir, $"setgid-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        var file = Path.Combine(dir, "sleeper-setgid");
        File.Copy(FixturePrograms.PathOf("sleeper"), file);
        File.SetUnixFileMode(file, UnixFileMode.SetGroup | ReadAndExecuteForAll); // group root: nobody runs it with egid 0
        using var victim = Untraced.StartAs(UnprivilegedOwner.Nobody, file);
        TrackPid(victim.Id);

        // The pid is setpriv's (root, with libc mapped) until it has dropped to nobody and exec'd the program: wait
        // for the program itself (CI once grabbed setpriv and was refused as another user's).
        Assert.True(await Observe.Eventually(() => Observe.MappedPathContaining(victim.Id, "sleeper-setgid") is not null));

        var e = await Assert.ThrowsAsync<GrabException>(async () => await UnprivilegedOwner.Tracer.GrabAsync(victim.Id, GrabAccess.Control, Timeout()));

        Assert.Equal(GrabRefusalKind.SetId, e.Refusal!.Kind);
        Assert.Equal($"permission denied: pid {victim.Id} runs a set-id program (uids 65534/65534/65534, gids 65534/0/0) and this tracer lacks CAP_SYS_PTRACE", e.Message);
        Assert.Equal(TracerErrorKind.PermissionDenied, e.Kind);
        Assert.Equal(0, Observe.TracerPid(victim.Id));
    }

    [Fact]
    [Trait("Privilege", "Root")] // as above
    public async Task A_non_dumpable_process_of_the_tracers_own_user_is_refused_as_not_dumpable()
    {
        using var victim = Untraced.StartAs(UnprivilegedOwner.Nobody, FixturePrograms.PathOf("nodump"));
        TrackPid(victim.Id);
        await GrabTests.WaitForMapping(victim.Id, "nodump");

        var e = await Assert.ThrowsAsync<GrabException>(async () => await UnprivilegedOwner.Tracer.GrabAsync(victim.Id, GrabAccess.Control, Timeout()));

        Assert.Equal(GrabRefusalKind.NotDumpable, e.Refusal!.Kind);
        Assert.Equal($"permission denied: pid {victim.Id} is not dumpable (prctl PR_SET_DUMPABLE 0) and this tracer lacks CAP_SYS_PTRACE", e.Message);
        Assert.False(e.Refusal.CallerPrivileged);
        Assert.Equal(0, Observe.TracerPid(victim.Id));
    }

    /// <summary>The traced fixture: a parent (the returned process) that traces its child (<paramref name="child"/>).</summary>
    private static Untraced StartTraced(out int child)
    {
        var parent = Untraced.Start("traced");
        var found = 0;
        Assert.True(Observe.Eventually(() =>
        {
            found = Directory.EnumerateDirectories("/proc")
                .Select(d => int.TryParse(Path.GetFileName(d), CultureInfo.InvariantCulture, out var pid) ? pid : 0)
                .FirstOrDefault(pid => pid > 0 && pid != parent.Id && Observe.TracerPid(pid) == parent.Id && Observe.State(pid) is 'S' or 'R');
            return found != 0 && Observe.MappedPathContaining(found, "libc") is not null;
        }).GetAwaiter().GetResult(), "the traced fixture's child did not start");
        child = found;
        return parent;
    }
}
