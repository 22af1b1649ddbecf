namespace ProcHex.Victims;

/// <summary>The events a victim was asked to park at (S10); each request is consumed by the stop it causes.</summary>
[Flags]
internal enum StopEvents
{
    None = 0,
    Create = 1,
    Grab = 2,
    Preinit = 4,
    Postinit = 8,
    Main = 16,
}

internal sealed class StopMask
{
    private StopEvents _requested;

    public StopMask(StopEvents initial) => _requested = initial;

    public bool IsRequested(StopEvents why) => (_requested & why) != 0;

    /// <summary>True once for a requested event: the request is spent by the stop it causes.</summary>
    public bool TryConsume(StopEvents why)
    {
        if ((_requested & why) == 0)
        {
            return false;
        }

        _requested &= ~why;
        return true;
    }

    /// <summary>Moves a request that can never be met (no rtld, no main) to one that can.</summary>
    public void Replace(StopEvents unreachable, StopEvents instead)
    {
        if (TryConsume(unreachable))
        {
            _requested |= instead;
        }
    }

    public static StopEvents For(Rendezvous rendezvous) => rendezvous switch
    {
        Rendezvous.Create => StopEvents.Create,
        Rendezvous.Preinit => StopEvents.Preinit,
        Rendezvous.Postinit => StopEvents.Postinit,
        Rendezvous.Main => StopEvents.Main,
        _ => throw new ArgumentOutOfRangeException(nameof(rendezvous), rendezvous, "unknown rendezvous"),
    };

    /// <inheritdoc/>
    public override string ToString() => _requested.ToString();
}
