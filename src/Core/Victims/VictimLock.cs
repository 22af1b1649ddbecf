namespace ProcHex.Victims;

/// <summary>
/// The per-victim lock that serialises clients against the control loop (S21). It is async (control loops are
/// tasks, not threads) and owned by a logical flow rather than a thread: a flow that already holds it may call
/// ProcHex again without deadlocking, but asking to lock it a second time is a <see cref="LockMisuseException"/>.
/// </summary>
#pragma warning disable CA1001 // The semaphore never allocates a wait handle (WaitAsync and Wait do not; only AvailableWaitHandle would), so there is nothing to dispose.
internal sealed class VictimLock
#pragma warning restore CA1001
{
    private static readonly AsyncLocal<object?> s_flow = new();
    private readonly SemaphoreSlim _gate = new(1, 1);
    private object? _owner;

    /// <summary>
    /// The identity of the calling logical flow, created on first use. Set from a synchronous method so the
    /// value stays in the caller's execution context.
    /// </summary>
    public static object CurrentFlow => s_flow.Value ??= new object();

    /// <summary>
    /// Gives the calling flow a fresh identity and returns it. Called synchronously when a flow takes a lock, so
    /// flows forked earlier keep their old identity and wait like strangers, while work the holder starts from
    /// now on is part of the holder.
    /// </summary>
    public static object BeginNewFlow() => s_flow.Value = new object();

    public bool IsHeldBy(object flow) => ReferenceEquals(Volatile.Read(ref _owner), flow);

    public async ValueTask AcquireAsync(object flow, CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken);
        Volatile.Write(ref _owner, flow);
    }

    public void Release(object flow)
    {
        if (!IsHeldBy(flow))
        {
            throw new LockMisuseException("unlock of a process handle whose lock this caller does not hold");
        }

        Volatile.Write(ref _owner, null);
        _gate.Release();
    }

    /// <summary>
    /// Enters for one operation, unless the flow already holds the lock (then the scope is a no-op). The operation
    /// holds the lock under an identity of its own: tasks forked from one flow share its identity, and two of them
    /// must not both pass as the holder.
    /// </summary>
    public async ValueTask<Scope> EnterAsync(object flow)
    {
        if (IsHeldBy(flow))
        {
            return default;
        }

        var operation = new object();
        await AcquireAsync(operation);
        return new Scope(this, operation);
    }

    /// <summary>
    /// Called when <see cref="Enter"/> finds the lock held by another flow, just before it blocks: lets a test know,
    /// without sleeping, that a reader is waiting for the holder.
    /// </summary>
    internal Action? Contended { get; set; }

    /// <summary>
    /// Enters synchronously, for a read that cannot await (a property such as <see cref="ClientBreakpoint.IsActive"/>),
    /// unless the flow already holds the lock: then, as in <see cref="EnterAsync"/>, the scope is a no-op, which is
    /// what keeps a breakpoint handler (run by the control loop, which holds the lock) from deadlocking on it.
    /// Another flow's hold blocks the calling thread until released.
    /// </summary>
    public Scope Enter(object flow)
    {
        if (IsHeldBy(flow))
        {
            return default;
        }

        var operation = new object();
        if (!_gate.Wait(0))
        {
            Contended?.Invoke();
            _gate.Wait();
        }

        Volatile.Write(ref _owner, operation);
        return new Scope(this, operation);
    }

    public readonly struct Scope(VictimLock? owner, object? flow) : IDisposable
    {
        public void Dispose() => owner?.Release(flow!);
    }
}
