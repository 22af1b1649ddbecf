using ProcHex.Ports;
using ProcHex.Victims;

namespace ProcHex.Breakpoints;

/// <summary>
/// A victim's pending breakpoints (SPECs, not addresses) and when they are looked up: when set, at every consistent
/// library-list change, and in every new image after exec. Callers hold the victim lock.
/// </summary>
internal sealed class PendingBreakpointSet
{
    private readonly List<PendingBreakpoint> _all = [];

    /// <summary>
    /// False from an exec (or a create) until the dynamic linker has the initial libraries in: until then a bare
    /// symbol is looked up in the executable only (the linker's own copies of libc functions are not the program's).
    /// </summary>
    public bool InitialLibrariesLoaded { get; set; }

    public int Count => _all.Count;

    /// <summary>Where the SPECs that name GNU indirect functions are planted: at the implementation their resolver chose.</summary>
    public IndirectFunctionResolver IndirectFunctions { get; } = new();

    public void Add(Victim victim, IControlHost host, PendingBreakpoint breakpoint)
    {
        _all.Add(breakpoint);
        Resolve(victim, host, breakpoint);
    }

    /// <summary>Whether one of the SPECs (a removed one is no longer among them) counts with <paramref name="counter"/> in the current image.</summary>
    public bool CountsWith(ISharedCounter counter) => _all.Exists(b => Array.IndexOf(b.Counters, counter) >= 0);

    public void Remove(Victim victim, PendingBreakpoint breakpoint)
    {
        _all.Remove(breakpoint);
        Unplant(victim, breakpoint, restoreText: victim.TextInReach);
        breakpoint.State = PendingBreakpointState.Removed;
    }

    /// <summary>The image was replaced: its traps went with it (the control loop forgot them); everything is pending again.</summary>
    public void OnExec(Victim victim, IControlHost host)
    {
        InitialLibrariesLoaded = false;
        IndirectFunctions.Callable = false;
        IndirectFunctions.Forget();
        foreach (var breakpoint in _all)
        {
            breakpoint.FoundInCurrentImage = false;
            var wasPlanted = breakpoint.State == PendingBreakpointState.Planted;
            Unplant(victim, breakpoint, restoreText: false);
            breakpoint.State = PendingBreakpointState.Pending;
            if (wasPlanted)
            {
                Tell(victim, host, breakpoint, "its image was replaced by an exec");
            }
        }
    }

    /// <summary>Objects went away (dlclose): what was planted in them is pending again. Then everything pending is looked up.</summary>
    public void OnLibrariesChanged(Victim victim, IControlHost host, IReadOnlyList<LoadedObject> removed)
    {
        if (removed.Count > 0)
        {
            IndirectFunctions.Forget();
        }

        foreach (var breakpoint in _all)
        {
            var gone = breakpoint.Sites.FirstOrDefault(s => removed.Any(o => o.Name == s.ObjectName || o.Path == s.ObjectName));
            if (breakpoint.State == PendingBreakpointState.Planted && gone is not null)
            {
                // The text went with the object: nothing to restore.
                Unplant(victim, breakpoint, restoreText: false);
                breakpoint.State = PendingBreakpointState.Pending;
                Tell(victim, host, breakpoint, $"{gone.ObjectName} was unloaded");
            }
        }

        ResolveAll(victim, host);
    }

    /// <summary>
    /// Control of the victim was lost: what its SPECs counted so far is what they counted, as for traps, which nobody
    /// answers from now on. Jumps a backend could not take out may go on incrementing; those calls are not ours to count.
    /// </summary>
    public void FreezeCounts(Victim victim)
    {
        foreach (var breakpoint in _all)
        {
            breakpoint.StopCounting(breakpoint.Counters);
            victim.Metrics.CountersRetired(breakpoint.Counters);
        }
    }

    /// <summary>The victim was let go (released or destroyed): its counters count no more, and stay readable.</summary>
    public void OnReleased(Victim victim)
    {
        FreezeCounts(victim);
        foreach (var breakpoint in _all)
        {
            breakpoint.Counters = [];
        }
    }

    public void ResolveAll(Victim victim, IControlHost host)
    {
        foreach (var breakpoint in _all.ToList())
        {
            Resolve(victim, host, breakpoint);
        }
    }

    private static void Resolve(Victim victim, IControlHost host, PendingBreakpoint breakpoint)
    {
        if (breakpoint.State != PendingBreakpointState.Pending || !victim.IsAlive)
        {
            return;
        }

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var symbols = victim.Process.Symbols;
        List<FunctionSymbol> found;
        string image;
        try
        {
            var objects = symbols.Objects;
            image = objects.Count > 0 ? objects[0].Path : "(no image)";
            found = Find(victim, host, breakpoint, symbols);
        }
        catch (TracerException ex)
        {
            Log.OperationFailed(victim.Logger, victim.Pid, $"look up {breakpoint.Spec}", ex.Message);
            return;
        }

        breakpoint.Searched(image);
        if (found.Count == 0)
        {
            Tell(victim, host, breakpoint, WhyNotFound(victim, breakpoint, symbols, image));
            return;
        }

        var targets = new List<(string Name, ulong Address, string? Implementation)>(found.Count);
        foreach (var (name, address) in found)
        {
            if (FindIndirectFunction(symbols, name, address) is not { } indirect)
            {
                targets.Add((name, address, null));
                continue;
            }

            // An IFUNC: the symbol is its resolver, run once; the program calls what the resolver returned.
            if (victim.PendingBreakpoints.IndirectFunctions.Resolve(victim, indirect, out var why) is not { } implementation)
            {
                Tell(victim, host, breakpoint, why);
                return;
            }

            if (!targets.Exists(t => t.Address == implementation))
            {
                targets.Add((name, implementation, TryResolve(symbols, implementation, out var at) ? at.ToString() : $"0x{implementation:x}"));
            }
        }

        var plant = victim.Lifecycle.MayWriteTraps;
        var placements = breakpoint.Preferred is not null ? InVictimCounters.Place(victim, breakpoint, [.. targets.Select(t => t.Address)]) : null;
        var clients = new List<ClientBreakpoint>(targets.Count);
        var counters = new List<ISharedCounter>();
        var sites = new PlantedSymbol[targets.Count];
        var slots = new SiteSlot[targets.Count];
        for (var i = 0; i < targets.Count; i++)
        {
            var (name, address, implementation) = targets[i];
            var objectName = TryResolve(symbols, address, out var at) ? at.ObjectName : "?";
            sites[i] = new PlantedSymbol(address, objectName, name, image) { Implementation = implementation };
            var slot = slots[i] = new SiteSlot();
            if (placements?[i] is { Counter: { } counter })
            {
                counters.Add(counter);
                breakpoint.AddCounted(counter, slot);
                sites[i] = sites[i] with { Counting = CountingMode.InVictim };
                continue;
            }

            if (placements is not null)
            {
                sites[i] = sites[i] with { Counting = CountingMode.Trap, Fallback = placements[i].Refusal };
            }

            var client = new ClientBreakpoint(victim.Handle, address, hit => breakpoint.OnHit(hit, slot));
            clients.Add(client);
            victim.Breakpoints.Add(address, SiteRoles.None, client, plant);
        }

        breakpoint.Clients = [.. clients];
        breakpoint.Counters = [.. counters];
        victim.Metrics.CountersInstalled(counters);
        breakpoint.SetSites(sites, slots);
        breakpoint.State = PendingBreakpointState.Planted;
        breakpoint.FoundInCurrentImage = true;
        breakpoint.ToldReason = null;
        Notify(victim, host, new PendingBreakpointChange(breakpoint, PendingBreakpointChangeKind.Planted, sites, null) { PlantingTime = clock.Elapsed });
    }

    private static IndirectFunction? FindIndirectFunction(ISymbolTable symbols, string name, ulong address)
    {
        try
        {
            return symbols.FindIndirectFunction(name, address);
        }
        catch (TracerException)
        {
            return null;
        }
    }

    private static bool TryResolve(ISymbolTable symbols, ulong address, out SymbolLocation location)
    {
        try
        {
            return symbols.TryResolve(address, out location);
        }
        catch (TracerException)
        {
            location = default;
            return false;
        }
    }

    /// <summary>
    /// The functions the SPEC names in the current image, each with the raw name it is known by: a plain SPEC by the
    /// name as written (<c>malloc</c>, not the alias <c>__libc_malloc</c> at the same address), a pattern by the
    /// symbol that matched.
    /// </summary>
    private static List<FunctionSymbol> Find(Victim victim, IControlHost host, PendingBreakpoint breakpoint, ISymbolTable symbols)
    {
        var pattern = breakpoint.Pattern;
        var everywhere = breakpoint.ObjectName is null && victim.PendingBreakpoints.InitialLibrariesLoaded;
        if (pattern.IsPlain)
        {
            var scope = breakpoint.ObjectName ?? (everywhere ? null : "a.out");
            return symbols.TryLookup(scope, pattern.Text, out var address) ? [new FunctionSymbol(pattern.Text, address)] : [];
        }

        IEnumerable<string> scopes = breakpoint.ObjectName is { } named ? [named] : everywhere ? symbols.Objects.Select(o => o.Path) : ["a.out"];
        foreach (var scope in scopes)
        {
            var functions = symbols.FunctionsOf(scope);
            var demangled = Demangle(host.Demangler, functions);
            var found = new List<FunctionSymbol>();
            var byAddress = new Dictionary<ulong, int>();
            for (var i = 0; i < functions.Count; i++)
            {
                if (!pattern.Matches(functions[i].Name, demangled[i]))
                {
                    continue;
                }

                // Aliases at one address are one function, named by the best alias that matched.
                if (!byAddress.TryGetValue(functions[i].Address, out var at))
                {
                    byAddress[functions[i].Address] = found.Count;
                    found.Add(functions[i]);
                }
                else if (BetterAlias(functions[i].Name, found[at].Name))
                {
                    found[at] = functions[i];
                }
            }

            if (found.Count > 0)
            {
                return found;
            }
        }

        return [];
    }

    /// <summary>
    /// The name a person would call the function by: fewer leading underscores (<c>malloc</c>, not <c>__libc_malloc</c>
    /// or <c>__malloc</c>), then the shorter, then the first in ordinal order (so the choice does not depend on table order).
    /// </summary>
    internal static bool BetterAlias(string candidate, string current)
    {
        var underscores = LeadingUnderscores(candidate).CompareTo(LeadingUnderscores(current));
        if (underscores != 0)
        {
            return underscores < 0;
        }

        return candidate.Length != current.Length ? candidate.Length < current.Length : string.CompareOrdinal(candidate, current) < 0;
    }

    private static int LeadingUnderscores(string name)
    {
        var n = 0;
        while (n < name.Length && name[n] == '_')
        {
            n++;
        }

        return n;
    }

    private static DemangledName?[] Demangle(ISymbolDemangler? demangler, IReadOnlyList<FunctionSymbol> functions)
    {
        var result = new DemangledName?[functions.Count];
        if (demangler is null)
        {
            return result;
        }

        var indices = new List<int>();
        for (var i = 0; i < functions.Count; i++)
        {
            if (SymbolPattern.IsDemanglable(functions[i].Name))
            {
                indices.Add(i);
            }
        }

        if (indices.Count > 0)
        {
            var names = demangler.Demangle([.. indices.Select(i => functions[i].Name)]);
            for (var k = 0; k < indices.Count && k < names.Count; k++)
            {
                result[indices[k]] = names[k];
            }
        }

        return result;
    }

    private static string WhyNotFound(Victim victim, PendingBreakpoint breakpoint, ISymbolTable symbols, string image)
    {
        if (breakpoint.ObjectName is { } name)
        {
            var loaded = name == "a.out" || symbols.Objects.Any(o => o.Name == name || o.Path == name || o.Name.Split('.')[0] == name);
            return loaded
                ? $"{name} does not define {breakpoint.Pattern.Text} (in {image}); waiting for an exec"
                : $"{name} is not loaded (in {image}); waiting for a dlopen or an exec";
        }

        return victim.PendingBreakpoints.InitialLibrariesLoaded
            ? $"no object of {image} defines {breakpoint.Pattern.Text}; waiting for a dlopen or an exec"
            : $"{image} does not define {breakpoint.Pattern.Text}; waiting for the initial libraries";
    }

    private static void Unplant(Victim victim, PendingBreakpoint breakpoint, bool restoreText)
    {
        InVictimCounters.Remove(victim, breakpoint);
        foreach (var client in breakpoint.Clients)
        {
            if (client.IsPlanted)
            {
                client.IsPlanted = false;
                victim.Breakpoints.RemoveClient(client, restoreText);
            }
        }

        breakpoint.Clients = [];
        breakpoint.ClearSites();
    }

    private static void Tell(Victim victim, IControlHost host, PendingBreakpoint breakpoint, string reason)
    {
        if (breakpoint.ToldReason == reason)
        {
            return;
        }

        breakpoint.ToldReason = reason;
        Notify(victim, host, new PendingBreakpointChange(breakpoint, PendingBreakpointChangeKind.Pending, [], reason));
    }

    private static void Notify(Victim victim, IControlHost host, PendingBreakpointChange change)
    {
        if (host.PendingBreakpointChanged is not { } callback)
        {
            return;
        }

        try
        {
            callback(change);
        }
#pragma warning disable CA1031 // Like the library-list callback: a client's failure becomes a notification.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            host.Notify(victim, NotificationKind.Error, ex.Message);
        }
    }
}
