namespace ProcHex.Peers;

/// <summary>
/// One way of compiling libpeer.so, so the peers meet peer_tick opening with different instructions: gcc's flags on
/// top of <c>-O2 -shared -fPIC</c>, and the first instruction the build must give (checked with objdump; a build
/// that gives another fails the bench), or null when whatever it gives is reported.
/// </summary>
internal sealed record BuildVariant(string Name, string[] Flags, string? Expected)
{
    /// <summary>The distribution's gcc with -O2 and nothing else: its first instruction is reported, whatever it is.</summary>
    public static readonly BuildVariant Default = new("default", [], null);

    /// <summary>-fcf-protection=branch: endbr64 whatever the distribution's default is (ProcHex emulates it).</summary>
    public static readonly BuildVariant Endbr64 = new("endbr64", ["-fcf-protection=branch"], "endbr64");

    /// <summary>
    /// No endbr64 and a frame pointer: <c>push %rbp</c> (ProcHex emulates it). gcc omits a leaf function's frame even
    /// with -fno-omit-frame-pointer, so PEER_FRAME makes peer_tick ask for its frame address (c/peerlib.c).
    /// </summary>
    public static readonly BuildVariant PushRbp = new("push-rbp", ["-fcf-protection=none", "-fno-omit-frame-pointer", "-DPEER_FRAME"], "push %rbp");

    /// <summary>Every variant, in the order the report lists them.</summary>
    public static readonly BuildVariant[] All = [Default, Endbr64, PushRbp];

    /// <summary>The flags as the report shows them.</summary>
    public string CommandLine => string.Join(' ', ["-O2", .. Flags]);

    /// <summary>The name as a perf event may spell it (letters, digits and underscores).</summary>
    public string Identifier => Name.Replace('-', '_');
}
