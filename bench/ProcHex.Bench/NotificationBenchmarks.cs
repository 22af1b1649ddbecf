using BenchmarkDotNet.Attributes;
using ProcHex.Notifications;

namespace ProcHex.Bench;

/// <summary>Issue 7, item 3: delivering a notification costs the same however many are already queued.</summary>
[MemoryDiagnoser]
public class NotificationBenchmarks
{
    private readonly NotificationQueue _queue = new(ProcHexMetrics.Shared);
    private VictimNotification _notice = null!;
    private ProcHexSession _session = null!;

    [Params(10, 1_000, 100_000)]
    public int Pending { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _session = new ProcHexSession(new ReadOnlyTracer());
        var handle = _session.GrabAsync(1, GrabMode.ReadOnly).GetAwaiter().GetResult();
        _notice = new VictimNotification(handle, NotificationKind.Exited, null, null);
        for (var i = 0; i < Pending; i++)
        {
            _queue.Enqueue(_notice);
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _session.DisposeAsync().AsTask().GetAwaiter().GetResult();

    /// <summary>S19: one notification queued behind <see cref="Pending"/> others, and the oldest taken.</summary>
    [Benchmark]
    public bool EnqueueAndTake()
    {
        _queue.Enqueue(_notice);
        return _queue.TryDequeue(out _);
    }
}
