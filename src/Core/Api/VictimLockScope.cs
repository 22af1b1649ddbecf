using ProcHex.Victims;

namespace ProcHex;

/// <summary>A held victim lock (S21). Dispose releases it once; <see cref="Unlock"/> a second time is misuse.</summary>
public sealed class VictimLockScope : IDisposable
{
    private readonly Victim _victim;
    private readonly object _flow;
    private int _released;

    internal VictimLockScope(Victim victim, object flow)
    {
        _victim = victim;
        _flow = flow;
    }

    /// <summary>The victim this scope holds locked.</summary>
    public ProcessHandle Handle => _victim.Handle;

    /// <summary>Releases the lock; a scope that was already released is a <see cref="LockMisuseException"/>.</summary>
    public void Unlock()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0)
        {
            throw new LockMisuseException($"pid {_victim.Pid}: unlock of a lock that is not held");
        }

        _victim.Lock.Release(_flow);
    }

    /// <summary>Releases the lock unless it was already released (through this scope or the session's Unlock).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0 && _victim.Lock.IsHeldBy(_flow))
        {
            _victim.Lock.Release(_flow);
        }
    }
}
