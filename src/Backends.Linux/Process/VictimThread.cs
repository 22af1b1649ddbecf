namespace ProcHex.Backends.Linux;

/// <summary>One traced thread of a victim. Owned by the owner thread, except <see cref="Undelivered"/>.</summary>
internal sealed class VictimThread(int tid)
{
    public int Tid { get; } = tid;

    /// <summary>Running as far as we know (we resumed it and have not read a stop since).</summary>
    public bool Running { get; set; } = true;

    /// <summary>
    /// Its registers as read (or written) in its current stop, valid until it next runs (<see cref="RegistersKnown"/>):
    /// a hit reads them once, for the trap's rewind and the step-over alike.
    /// </summary>
    public Interop.UserRegs Registers;

    /// <summary><see cref="Registers"/> hold the thread's registers in this stop.</summary>
    public bool RegistersKnown { get; set; }

    /// <summary>The PC it was last resumed at, when we knew it (<see cref="UnknownPc"/> otherwise).</summary>
    public ulong ResumedAt { get; set; } = UnknownPc;

    public const ulong UnknownPc = ulong.MaxValue;

    /// <summary>The signal to deliver when this thread is next resumed.</summary>
    public int InjectSignal { get; set; }

    /// <summary>
    /// Events of this thread queued for the core but not yet taken. Such a thread stays stopped: the core has not
    /// seen why it stopped. Decremented by whichever thread takes the event, hence interlocked.
    /// </summary>
    public int Undelivered;
}
