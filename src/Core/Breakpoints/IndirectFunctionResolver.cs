using ProcHex.Ports;
using ProcHex.Victims;

namespace ProcHex.Breakpoints;

/// <summary>
/// Finds the implementation a GNU indirect function's resolver chose (issue 17, item 1), the way gdb does: the answer
/// the dynamic linker already stored in a GOT slot, else the resolver called in the victim. A SPEC naming an IFUNC is
/// planted there, so it counts the calls the program makes, not the resolver's single run. Callers hold the victim lock.
/// </summary>
/// <remarks>
/// Resolvers may only run once the objects are relocated: the GOT holds link-time values before that, and glibc's
/// resolvers read cpu_features, which ld.so fills in and a static executable only has from <c>__libc_start_main</c> on.
/// So nothing is read or called until <see cref="Callable"/> (the initial libraries are in and relocated, a grabbed
/// process, or main of a static executable); the SPEC waits until then.
/// </remarks>
internal sealed class IndirectFunctionResolver
{
    /// <summary>How long a resolver may run in the victim; they return in microseconds.</summary>
    public static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(5);

    private readonly Dictionary<ulong, ulong> _cache = [];

    /// <summary>True once the victim's indirect functions can be resolved (see the remarks).</summary>
    public bool Callable { get; set; }

    /// <summary>The image changed (an exec, or objects went away): answers may no longer hold.</summary>
    public void Forget() => _cache.Clear();

    /// <summary>
    /// The implementation of <paramref name="function"/>, or null with <paramref name="why"/> saying what is missing
    /// (for the "pending" notification; the SPEC is looked up again at the next library change).
    /// </summary>
    public ulong? Resolve(Victim victim, IndirectFunction function, out string why)
    {
        why = string.Empty;
        if (_cache.TryGetValue(function.Resolver, out var cached) && function.IsImplementation(cached))
        {
            return cached;
        }

        if (!Callable)
        {
            why = $"{function.Name} is a GNU indirect function (IFUNC) of {function.ObjectName}; waiting until its objects are relocated to find the implementation its resolver chooses";
            return null;
        }

        Span<byte> slot = stackalloc byte[8];
        foreach (var address in function.Slots)
        {
            if (TryRead(victim.Process, address, slot) && BitConverter.ToUInt64(slot) is var value && function.IsImplementation(value))
            {
                return Found(victim, function, value, $"in the GOT slot at 0x{address:x}");
            }
        }

        if (victim.State is not (VictimState.Stopped or VictimState.Idle or VictimState.Grabbed))
        {
            why = $"{function.Name} is a GNU indirect function (IFUNC) of {function.ObjectName} whose resolver has not run yet and can only be called while the process is stopped; waiting for a library change";
            return null;
        }

        ulong returned;
        try
        {
            returned = victim.Process.CallFunction(function.Resolver, CallTimeout);
        }
        catch (TracerException ex)
        {
            why = $"{function.Name} is a GNU indirect function (IFUNC) of {function.ObjectName}, and calling its resolver at 0x{function.Resolver:x} failed: {ex.Message}";
            return null;
        }

        // A slot may hold another object's function (an interposed definition bound instead); what the resolver itself
        // returns is this function's implementation wherever it lives, as long as it is in a loaded object.
        if (!function.IsImplementation(returned) && !IsElsewhereLoaded(victim.Process.Symbols, function, returned))
        {
            why = $"{function.Name} is a GNU indirect function (IFUNC) of {function.ObjectName}, and its resolver returned 0x{returned:x}, which is not code of any loaded object";
            return null;
        }

        return Found(victim, function, returned, "by calling its resolver");
    }

    private ulong Found(Victim victim, IndirectFunction function, ulong implementation, string how)
    {
        _cache[function.Resolver] = implementation;
        Log.IndirectFunctionResolved(victim.Logger, victim.Pid, function.Name, function.Resolver, implementation, how);
        return implementation;
    }

    private static bool IsElsewhereLoaded(ISymbolTable symbols, IndirectFunction function, ulong address)
    {
        try
        {
            return address != function.Resolver && !function.Unbound.Any(r => r.Contains(address)) && symbols.TryResolve(address, out _);
        }
        catch (TracerException)
        {
            return false;
        }
    }

    private static bool TryRead(ITracedProcess process, ulong address, Span<byte> destination)
    {
        try
        {
            return process.ReadMemory(address, destination) == destination.Length;
        }
        catch (TracerException)
        {
            return false;
        }
    }
}
