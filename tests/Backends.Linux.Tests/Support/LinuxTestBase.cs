using ProcHex.Ports;

[assembly: CollectionBehavior(DisableTestParallelization = true)]
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace ProcHex.Backends.Linux.Tests.Support;

/// <summary>
/// Base of every Linux test: creates and grabs through one tracer, remembers every victim, and after the test
/// checks the invariants (issue 3): victim text equals the file's bytes wherever a breakpoint was (every executable
/// mapping is compared), no victim left traced, none left stopped unless the test meant it, no zombie children.
/// </summary>
public abstract class LinuxTestBase : IAsyncLifetime
{
    private readonly List<ITracedProcess> _processes = [];
    private readonly List<int> _pids = [];

    internal LinuxTracer Tracer { get; } = new(TestLog.Factory);

    /// <summary>Pids a test deliberately leaves stopped (S20 hang); killed by the cleanup.</summary>
    protected HashSet<int> LeftStopped { get; } = [];

    /// <summary>The threads fixture, untraced and watched: four threads that call work() without a pause, until killed.</summary>
    internal async Task<Untraced> StartBusyThreads()
    {
        var victim = Untraced.StartWatched("threads", "1000000000000");
        TrackPid(victim.Id);
        await GrabTests.WaitForMapping(victim.Id, "threads");
        return victim;
    }

    protected static CancellationToken Timeout(int seconds = 30) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;

    internal async Task<ITracedProcess> Create(string program, params string[] args)
    {
        var path = FixturePrograms.PathOf(program);
        return await CreateFile(path, [path, .. args]);
    }

    internal async Task<ITracedProcess> CreateFile(string file, IReadOnlyList<string> argv, IReadOnlyList<string>? env = null)
    {
        var p = await Tracer.CreateAsync(new ProcessStartRequest(file, argv, env), Timeout());
        Track(p);
        return p;
    }

    internal async Task<ITracedProcess> Grab(int pid)
    {
        var p = await Tracer.GrabAsync(pid, GrabAccess.Control, Timeout());
        Track(p);
        return p;
    }

    internal void Track(ITracedProcess p)
    {
        _processes.Add(p);
        _pids.Add(p.Pid);
    }

    internal void TrackPid(int pid) => _pids.Add(pid);

    internal static async Task<StopEvent> Next(ITracedProcess p, int seconds = 30) => await p.WaitForStopAsync(Timeout(seconds));

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var p in _processes)
        {
            p.Dispose();
        }

        foreach (var pid in _pids)
        {
            await Observe.CheckReleased(pid, LeftStopped.Contains(pid));
        }

        foreach (var pid in _pids)
        {
            if (Observe.State(pid) is { } s && s != 'Z')
            {
                _ = Kill(pid, 9);
            }
        }

        Assert.True(await Observe.Eventually(() => Observe.ZombieChildren().Count == 0), $"zombie children: {string.Join(",", Observe.ZombieChildren())}");
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill")]
    internal static extern int Kill(int pid, int signal);
}
