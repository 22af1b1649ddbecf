using ProcHex.Ports;

namespace ProcHex.Backends.Linux.Tests.Support;

/// <summary>
/// The Linux tracer, remembering every victim it created or grabbed for control, so that a test that only sees
/// the session (the scenario suite) can still check the invariants on every real process it touched.
/// </summary>
internal sealed class RecordingTracer(IProcessTracer inner) : IProcessTracer
{
    private readonly List<(int Pid, bool Created)> _victims = [];

    public string Name => inner.Name;

    public IReadOnlyList<(int Pid, bool Created)> Victims
    {
        get
        {
            lock (_victims)
            {
                return [.. _victims];
            }
        }
    }

    public async ValueTask<ITracedProcess> CreateAsync(ProcessStartRequest request, CancellationToken cancellationToken)
    {
        var p = await inner.CreateAsync(request, cancellationToken);
        Record(p.Pid, created: true);
        return p;
    }

    public async ValueTask<ITracedProcess> GrabAsync(int pid, GrabAccess access, CancellationToken cancellationToken)
    {
        var p = await inner.GrabAsync(pid, access, cancellationToken);
        if (access == GrabAccess.Control)
        {
            Record(pid, created: false);
        }

        return p;
    }

    private void Record(int pid, bool created)
    {
        lock (_victims)
        {
            _victims.Add((pid, created));
        }
    }
}
