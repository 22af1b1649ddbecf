using ProcHex.Ports;

namespace ProcHex;

/// <summary>Where a <see cref="PendingBreakpoint"/> stands.</summary>
public enum PendingBreakpointState
{
    /// <summary>No object of the current image defines the SPEC (yet): it is looked up again at every library change and exec.</summary>
    Pending,

    /// <summary>Planted on every function the SPEC matches in one object of the current image.</summary>
    Planted,

    /// <summary>Removed by the client, or its victim was released.</summary>
    Removed,
}

/// <summary>One address a pending breakpoint was planted on: the raw symbol there, its object, and the image (executable) it belonged to.</summary>
/// <remarks>
/// When <see cref="Symbol"/> is a GNU indirect function (IFUNC), <see cref="Address"/> is the implementation its
/// resolver chose (what the program calls), <see cref="Implementation"/> names it (<c>libc.so.6`__strlen_avx2</c>, or
/// the object and an offset when the object has no symbol there) and <see cref="ObjectName"/> is its object.
/// </remarks>
public sealed record PlantedSymbol(ulong Address, string ObjectName, string Symbol, string Image)
{
    /// <summary>For an indirect function, where its calls go; null for an ordinary function.</summary>
    public string? Implementation { get; init; }

    /// <summary>For a counter (<see cref="ProcHexSession.SetPendingCounterAsync"/>), how this site counts; null for a breakpoint.</summary>
    public CountingMode? Counting { get; init; }

    /// <summary>Why a counter's site counts with a trap rather than in the victim; null when it counts in the victim.</summary>
    public string? Fallback { get; init; }
}

/// <summary>How a counter's site counts calls (issue 18).</summary>
public enum CountingMode
{
    /// <summary>
    /// In the victim: the function's entry jumps to code that increments a counter the tracer shares, without a stop.
    /// </summary>
    InVictim,

    /// <summary>With a trap (a breakpoint whose handler counts): one stop per call.</summary>
    Trap,
}

/// <summary>
/// A breakpoint on a SPEC (<c>object`symbol</c> or a bare symbol; C++ names demangled or raw; <c>*</c> and <c>?</c>
/// wildcards) rather than on an address: what a tracer's <c>-c cmd</c> needs when the program it wants is only
/// reached through wrappers (<c>env</c>, shell scripts that <c>exec "$@"</c>, version-manager shims) or loads the
/// library later. The session looks it up in the current image now, again at every library-list change (dlopen,
/// dlclose) and in every new image an exec brings, and plants it wherever it is found; hits are counted over the
/// whole run, across images.
/// </summary>
/// <remarks>
/// A bare symbol is searched in the executable and, once the initial libraries are in, in every object in load
/// order: the first object that defines it wins (all the overloads a C++ name matches in that object are planted).
/// An <c>object`symbol</c> SPEC waits for its object. Planted once, a SPEC stays on those addresses until their
/// object is unloaded or the image is replaced; then it is pending again.
/// </remarks>
public sealed class PendingBreakpoint
{
    private readonly Lock _gate = new();
    private readonly List<string> _images = [];
    private readonly List<PlantedSymbol> _everPlanted = [];
    private readonly List<CountedCounter> _shared = [];
    private readonly List<SiteSlot> _slots = [];
    private PlantedSymbol[] _sites = [];
    private long _hits;

    internal PendingBreakpoint(ProcessHandle handle, string spec, string? objectName, string symbol, BreakpointHandler handler)
    {
        Handle = handle;
        Spec = spec;
        ObjectName = objectName;
        Pattern = new Breakpoints.SymbolPattern(symbol);
        Handler = handler;
    }

    /// <summary>The victim it is set in.</summary>
    public ProcessHandle Handle { get; }

    /// <summary>The SPEC as given.</summary>
    public string Spec { get; }

    /// <summary>
    /// Hits of every address it was planted on, in every image, since it was set: a counter's calls counted in the
    /// victim included (read from memory shared with it, without a stop; they stay readable after it ended).
    /// </summary>
    public long Hits
    {
        get
        {
            var hits = Interlocked.Read(ref _hits);
            lock (_gate)
            {
                foreach (var counted in _shared)
                {
                    hits += counted.Hits;
                }
            }

            return hits;
        }
    }

    /// <summary>Pending, planted somewhere, or removed.</summary>
    public PendingBreakpointState State { get; internal set; } = PendingBreakpointState.Pending;

    /// <summary>Where it is planted in the current image (empty while pending).</summary>
    public IReadOnlyList<PlantedSymbol> Sites => Volatile.Read(ref _sites);

    /// <summary>Every address it was ever planted on, in every image, in order.</summary>
    public IReadOnlyList<PlantedSymbol> EverPlanted
    {
        get
        {
            lock (_gate)
            {
                return [.. _everPlanted];
            }
        }
    }

    /// <summary>
    /// The hits of each address it was ever planted on, one entry per <see cref="EverPlanted"/> site in the same order:
    /// trap hits at that address and the calls its in-victim counter counted (read without a stop). Their sum is
    /// <see cref="Hits"/>. What a per-function count of a wildcard SPEC needs (<c>libc.so.6`mem*</c>).
    /// </summary>
    public IReadOnlyList<SiteHits> HitsBySite
    {
        get
        {
            lock (_gate)
            {
                var result = new SiteHits[_everPlanted.Count];
                for (var i = 0; i < result.Length; i++)
                {
                    result[i] = new SiteHits(_everPlanted[i], _slots[i].Hits);
                }

                return result;
            }
        }
    }

    /// <summary>The executables of every image it was looked up in, in order (an image exec'd twice is listed once).</summary>
    public IReadOnlyList<string> ImagesSearched
    {
        get
        {
            lock (_gate)
            {
                return [.. _images];
            }
        }
    }

    /// <summary>True once it was found in the current image (false again after each exec until it is found there).</summary>
    public bool FoundInCurrentImage { get; internal set; }

    internal string? ObjectName { get; }

    internal Breakpoints.SymbolPattern Pattern { get; }

    internal BreakpointHandler Handler { get; }

    internal ClientBreakpoint[] Clients { get; set; } = [];

    /// <summary>
    /// For a counter (<see cref="ProcHexSession.SetPendingCounterAsync"/>: hits are all that is kept), how it was asked to
    /// count: in the victim wherever a site allows, or with traps; null for a breakpoint.
    /// </summary>
    internal CountingMode? Preferred { get; init; }

    /// <summary>The in-victim counters of the current image's sites.</summary>
    internal ISharedCounter[] Counters { get; set; } = [];

    /// <summary>
    /// Counts <paramref name="counter"/>'s calls from now on, as the hits of <paramref name="slot"/> too (the backend
    /// may hand out a counter another SPEC already counts with).
    /// </summary>
    internal void AddCounted(ISharedCounter counter, SiteSlot slot)
    {
        lock (_gate)
        {
            var counted = new CountedCounter(counter, counter.Value);
            _shared.Add(counted);
            slot.Counted = counted;
        }
    }

    /// <summary>
    /// Counts no more of <paramref name="counters"/>' calls: taken out, gone with their image, or left in by a removal that
    /// failed or by another SPEC that still counts with them.
    /// </summary>
    internal void StopCounting(ISharedCounter[] counters)
    {
        lock (_gate)
        {
            foreach (var counted in _shared)
            {
                if (counted.Final is null && Array.IndexOf(counters, counted.Counter) >= 0)
                {
                    counted.Final = counted.Counter.Value;
                }
            }
        }
    }

    /// <summary>The last pending reason told to the client, so a reason is told once, not at every library change.</summary>
    internal string? ToldReason { get; set; }

    internal void OnHit(BreakpointHit hit, SiteSlot slot)
    {
        Interlocked.Increment(ref _hits);
        slot.CountTrap();
        Handler(hit);
    }

    internal void Searched(string image)
    {
        lock (_gate)
        {
            if (!_images.Contains(image))
            {
                _images.Add(image);
            }
        }
    }

    internal void SetSites(PlantedSymbol[] sites, SiteSlot[] slots)
    {
        lock (_gate)
        {
            _everPlanted.AddRange(sites);
            _slots.AddRange(slots);
        }

        Volatile.Write(ref _sites, sites);
    }

    internal void ClearSites() => Volatile.Write(ref _sites, []);

    /// <inheritdoc/>
    public override string ToString() => $"{Spec} ({State}, {Hits} hits)";
}

/// <summary>The hits of one site of a <see cref="PendingBreakpoint"/> (<see cref="PendingBreakpoint.HitsBySite"/>).</summary>
/// <param name="Site">Where it was planted.</param>
/// <param name="Hits">Calls counted there: trap hits and in-victim counts.</param>
public sealed record SiteHits(PlantedSymbol Site, long Hits);

/// <summary>One site's own hits: its trap hits, and its in-victim counter (kept readable after it is taken out).</summary>
internal sealed class SiteSlot
{
    private long _trapHits;

    public CountedCounter? Counted { get; set; }

    public long Hits => Interlocked.Read(ref _trapHits) + (Counted?.Hits ?? 0);

    public void CountTrap() => Interlocked.Increment(ref _trapHits);
}

/// <summary>What happened to a <see cref="PendingBreakpoint"/>.</summary>
public enum PendingBreakpointChangeKind
{
    /// <summary>Found and planted: <see cref="PendingBreakpointChange.Sites"/> says where.</summary>
    Planted,

    /// <summary>Not (or no longer) planted: <see cref="PendingBreakpointChange.Reason"/> says why (told once per reason).</summary>
    Pending,
}

/// <summary>A pending breakpoint was planted or went (back) to pending.</summary>
public sealed record PendingBreakpointChange(
    PendingBreakpoint Breakpoint,
    PendingBreakpointChangeKind Kind,
    IReadOnlyList<PlantedSymbol> Sites,
    string? Reason)
{
    /// <summary>
    /// For a planting, what it cost: the lookup in the image's symbol tables (and demangling), indirect functions'
    /// implementations, and writing every site (one batch of in-victim counters, then the traps); null when pending.
    /// </summary>
    public TimeSpan? PlantingTime { get; init; }
}

/// <summary>Runs with the victim locked and stopped (on its control loop, or in the call that set the breakpoint); an exception becomes a notification.</summary>
public delegate void PendingBreakpointChangedHandler(PendingBreakpointChange change);

/// <summary>One in-victim counter a SPEC counts with: its value when it started, and when it stopped counting for it.</summary>
internal sealed class CountedCounter(ISharedCounter counter, ulong baseline)
{
    public ISharedCounter Counter { get; } = counter;

    public ulong Baseline { get; } = baseline;

    public ulong? Final { get; set; }

    /// <summary>The calls it counted for the SPEC.</summary>
    public long Hits => (long)((Final ?? Counter.Value) - Baseline);
}
