namespace ProcHex.Peers;

/// <summary>Every peer of the throughput bench, by role (the report's ratios and targets name them).</summary>
internal sealed class Contenders : IAsyncDisposable
{
    public LibraryPeer Emulated { get; } = new(emulate: true);

    public LibraryPeer Plain { get; } = new(emulate: false);

    public LibraryPeer InVictim { get; } = new(emulate: true, inVictim: true);

    public CliPeer Cli { get; } = new("ProcHex CLI (prochex run --count, in-victim)", Bench.DotnetHost(), Bench.CliDll());

    public CTracerPeer CTracer { get; } = new();

    public CTracerPeer CTracerOneStop { get; } = new(emulate: true);

    public GdbPeer Gdb { get; } = new(Tool.Find("gdb"));

    public LtracePeer Ltrace { get; } = new(Tool.Find("ltrace"));

    public UprobesPeer Uprobes { get; } = new(Tool.Find("perf"));

    public UntracedPeer Untraced { get; } = new();

    /// <summary>In the order the tables list them.</summary>
    public Peer[] All => [Emulated, Plain, InVictim, Cli, CTracer, CTracerOneStop, Gdb, Ltrace, Uprobes, Untraced];

    public async ValueTask DisposeAsync()
    {
        await Emulated.DisposeAsync();
        await Plain.DisposeAsync();
        await InVictim.DisposeAsync();
        await Uprobes.RemoveAsync();
    }
}

/// <summary>The runs of the throughput bench, by build, peer and threading.</summary>
internal sealed class Results
{
    private readonly Dictionary<(Fixture Build, Peer Peer, int Threads), List<PeerRun>> _runs = [];

    public void Add(Fixture build, Peer peer, int threads, PeerRun run)
    {
        if (!_runs.TryGetValue((build, peer, threads), out var runs))
        {
            _runs[(build, peer, threads)] = runs = [];
        }

        runs.Add(run);
    }

    /// <summary>The runs of one cell; null when the peer did not run there.</summary>
    public List<PeerRun>? Of(Fixture build, Peer peer, int threads) => _runs.GetValueOrDefault((build, peer, threads));

    /// <summary>Hits/s of the runs that went through (median and spread); null when none did.</summary>
    public Spread? Rate(Fixture build, Peer peer, int threads) =>
        Of(build, peer, threads) is { } runs ? Spread.Of(runs.Where(r => r.Problem is null).Select(r => r.HitsPerSecond)) : null;

    /// <summary>Whether one run of a ProcHex path counted other than N.</summary>
    public bool ProcHexMiscounted => _runs.Any(r => r.Key.Peer.IsProcHex && r.Value.Any(run => !run.Exact));
}
