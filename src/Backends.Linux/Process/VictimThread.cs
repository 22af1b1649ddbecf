namespace ProcHex.Backends.Linux;

/// <summary>One traced thread of a victim. Owned by the owner thread, except <see cref="Undelivered"/>.</summary>
internal sealed class VictimThread(int tid)
{
    public int Tid { get; } = tid;

    /// <summary>Running as far as we know (we resumed it and have not read a stop since).</summary>
    public bool Running { get; set; } = true;

    /// <summary>The signal to deliver when this thread is next resumed.</summary>
    public int InjectSignal { get; set; }

    /// <summary>
    /// Events of this thread queued for the core but not yet taken. Such a thread stays stopped: the core has not
    /// seen why it stopped. Decremented by whichever thread takes the event, hence interlocked.
    /// </summary>
    public int Undelivered;
}
