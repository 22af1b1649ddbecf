namespace ProcHex.Scale;

/// <summary>
/// Samples this process's OS thread count (/proc/self/status Threads) every few milliseconds, keeping the peak
/// of each phase and the thread names at the overall peak; open descriptors are counted at each phase change
/// only (listing /proc/self/fd with a thousand entries every few milliseconds would cost more than the tracer).
/// </summary>
/// <remarks>It runs on a System.Threading.Timer, i.e. on the runtime's timer and pool threads that any tracer has anyway.</remarks>
internal sealed class Sampler : IDisposable
{
    private readonly Timer _timer;
    private readonly object _gate = new();
    private readonly Dictionary<string, (int Threads, int Fds)> _peaks = [];
    private string _phase = "start";

    public Sampler(TimeSpan period)
    {
        _timer = new Timer(_ => Sample(), null, TimeSpan.Zero, period);
    }

    public int PeakThreads { get; private set; }

    public SortedDictionary<string, int> NamesAtPeak { get; private set; } = [];

    public string Phase
    {
        set
        {
            Sample(countFds: true);
            lock (_gate)
            {
                _phase = value;
            }

            Sample(countFds: true);
        }
    }

    public (int Threads, int Fds) PeakOf(string phase)
    {
        lock (_gate)
        {
            return _peaks.GetValueOrDefault(phase);
        }
    }

    public void Sample(bool countFds = false)
    {
        var threads = ProcSelf.Threads();
        var fds = countFds ? ProcSelf.OpenFds() : 0;
        lock (_gate)
        {
            var peak = _peaks.GetValueOrDefault(_phase);
            _peaks[_phase] = (Math.Max(peak.Threads, threads), Math.Max(peak.Fds, fds));
            if (threads > PeakThreads)
            {
                PeakThreads = threads;
                NamesAtPeak = ProcSelf.ThreadNames();
            }
        }
    }

    public void Dispose() => _timer.Dispose();
}
