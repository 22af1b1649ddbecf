using System.Diagnostics.Tracing;

namespace ProcHex.Peers;

/// <summary>
/// Which types the process allocates, sampled from the runtime's GCAllocationTick events (one per ~100 KB
/// allocated, naming the type that crossed the line): enough to see what the hot path allocates per hit.
/// </summary>
internal sealed class AllocationProfile : EventListener
{
    private readonly Dictionary<string, long> _ticks = [];
    private readonly Lock _gate = new();

    protected override void OnEventSourceCreated(EventSource eventSource)
    {
        if (eventSource.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(eventSource, EventLevel.Verbose, (EventKeywords)0x1); // GC
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs eventData)
    {
        if (eventData.EventName is not { } name || !name.StartsWith("GCAllocationTick", StringComparison.Ordinal) || eventData.PayloadNames is null)
        {
            return;
        }

        var index = eventData.PayloadNames.IndexOf("TypeName");
        if (index >= 0 && eventData.Payload?[index] is string type)
        {
            lock (_gate)
            {
                _ticks[type] = _ticks.GetValueOrDefault(type) + 1;
            }
        }
    }

    public IReadOnlyList<(string Type, long Ticks)> Top(int count)
    {
        lock (_gate)
        {
            return [.. _ticks.OrderByDescending(t => t.Value).Take(count).Select(t => (t.Key, t.Value))];
        }
    }
}
