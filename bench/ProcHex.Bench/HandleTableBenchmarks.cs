using BenchmarkDotNet.Attributes;

namespace ProcHex.Bench;

/// <summary>
/// Issue 7, item 3: the handle table's cost per operation must not grow with the number of handles held.
/// Every benchmark runs against a session already holding <see cref="Handles"/> cached read-only handles.
/// </summary>
[MemoryDiagnoser]
public class HandleTableBenchmarks
{
    private ProcHexSession _session = null!;
    private int _next;
    private int _nextNew;

    [Params(10, 1_000, 100_000)]
    public int Handles { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _session = new ProcHexSession(new ReadOnlyTracer(), new ProcHexOptions { LruLimit = Handles });
        for (var pid = 1; pid <= Handles; pid++)
        {
            var handle = _session.GrabAsync(pid, GrabMode.ReadOnly).GetAwaiter().GetResult();
            _session.ReleaseAsync(handle).GetAwaiter().GetResult();
        }

        _nextNew = Handles + 1;
    }

    [GlobalCleanup]
    public void Cleanup() => _session.DisposeAsync().AsTask().GetAwaiter().GetResult();

    /// <summary>S5 then S8: a grab that finds the handle cached, and its release back into the cache.</summary>
    [Benchmark]
    public async Task CachedGrabAndRelease()
    {
        _next = (_next % Handles) + 1;
        var handle = await _session.GrabAsync(_next, GrabMode.ReadOnly);
        await _session.ReleaseAsync(handle);
    }

    /// <summary>S7: a grab of a new pid while the cache is full, which destroys the least recently used handle.</summary>
    [Benchmark]
    public async Task GrabEvictingTheLeastRecentlyUsed()
    {
        var handle = await _session.GrabAsync(_nextNew++, GrabMode.ReadOnly);
        await _session.ReleaseAsync(handle);
    }
}
