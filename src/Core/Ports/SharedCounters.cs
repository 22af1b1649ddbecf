namespace ProcHex.Ports;

/// <summary>A function entry where the core asks the backend for an in-victim counter (issue 18).</summary>
/// <param name="Entry">The function's address in the victim.</param>
/// <param name="FunctionLength">The function's size (its symbol's), when known: it bounds the bytes a patch may
/// displace, and every branch of the function is checked against them.</param>
public readonly record struct CounterSite(ulong Entry, int? FunctionLength);

/// <summary>
/// A call counter that lives in memory the tracer shares with the victim: the victim's code increments it at the
/// function's entry without stopping, and <see cref="Value"/> reads it from any thread, without a lock or a stop. It
/// stays readable after its removal and after the victim's exec, exit or death.
/// </summary>
public interface ISharedCounter
{
    /// <summary>The function entry it counts.</summary>
    ulong Entry { get; }

    /// <summary>The calls counted so far (a relaxed read of memory the victim writes with locked increments).</summary>
    ulong Value { get; }
}

/// <summary>What installing a counter at one <see cref="CounterSite"/> gave: exactly one of <paramref name="Counter"/> and <paramref name="Refusal"/>.</summary>
/// <param name="Site">The site asked for.</param>
/// <param name="Counter">The counter, counting from now on.</param>
/// <param name="Refusal">Why the site cannot count in the victim (the core then counts it with a trap): a sentence a user can read.</param>
public readonly record struct CounterPlacement(CounterSite Site, ISharedCounter? Counter, string? Refusal)
{
    /// <summary>A site refused, with <paramref name="why"/>.</summary>
    public static CounterPlacement Refused(CounterSite site, string why) => new(site, null, why);
}
