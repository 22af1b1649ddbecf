namespace ProcHex.Backends.Linux.Tests.Support;

/// <summary>
/// Who runs the tests. CI runs the Linux tests twice (issue 8): as root with <c>--filter Privilege!=Unprivileged</c>
/// and as the unprivileged user prochex-ci with <c>--filter Privilege!=Root</c>. A test that needs root (to make a
/// set-id program of another user, or to drop a thread to nobody) carries <c>[Trait("Privilege", "Root")]</c>; one
/// that proves what an ordinary user meets carries <c>[Trait("Privilege", "Unprivileged")]</c> and fails as root.
/// </summary>
internal static class Privilege
{
    /// <summary>The effective uid of this test process.</summary>
    public static int EffectiveUid { get; } = Observe.EffectiveUid(Environment.ProcessId);

    public static bool IsRoot => EffectiveUid == 0;

    /// <summary>The first line of an unprivileged-identity test: as root it would prove nothing, so it fails.</summary>
    public static void RequireUnprivileged() =>
        Assert.True(!IsRoot, "this test must run as an unprivileged user (root may grab anything); as root, run the tests with --filter Privilege!=Unprivileged");
}
