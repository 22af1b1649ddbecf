namespace ProcHex.Backends.Linux.Simulation.Kernel;

/// <summary>
/// One sigpending list: a thread's private queue or its group's shared one. Legacy (non-realtime) signals are
/// queued at most once (legacy_queue); dequeueing prefers synchronous signals, then the lowest number
/// (next_signal), FIFO within one number.
/// </summary>
internal sealed class SignalQueue
{
    private readonly List<SigInfo> _pending = [];

    public bool IsEmpty => _pending.Count == 0;

    public IReadOnlyList<SigInfo> Items => _pending;

    public bool Contains(int signal) => _pending.Exists(s => s.Signo == signal);

    public void Enqueue(SigInfo info)
    {
        if (info.Signo < Abi.SIGRTMIN && Contains(info.Signo))
        {
            return;
        }

        _pending.Add(info);
    }

    public void Flush(Func<int, bool> which) => _pending.RemoveAll(s => which(s.Signo));

    /// <summary>dequeue_synchronous_signal: the first kernel-raised fault or trap, ahead of everything else.</summary>
    public SigInfo? DequeueSynchronous()
    {
        var i = _pending.FindIndex(s => Abi.IsSynchronous(s.Signo) && s.Code > 0);
        return i < 0 ? null : Take(i);
    }

    public SigInfo? Dequeue()
    {
        if (_pending.Count == 0)
        {
            return null;
        }

        var synchronous = _pending.FindIndex(s => Abi.IsSynchronous(s.Signo));
        if (synchronous >= 0)
        {
            return Take(synchronous);
        }

        var lowest = _pending.Min(s => s.Signo);
        return Take(_pending.FindIndex(s => s.Signo == lowest));
    }

    private SigInfo Take(int index)
    {
        var info = _pending[index];
        _pending.RemoveAt(index);
        return info;
    }
}
