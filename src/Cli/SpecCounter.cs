using System.Text.Json.Nodes;

namespace ProcHex.Cli;

/// <summary>
/// Sets one pending breakpoint per SPEC (the session looks each up again at every library change and in every image
/// an exec brings) and turns what happens to them into events and the final table: counts are per SPEC over the
/// whole run, whatever images it was counted in.
/// </summary>
internal sealed class SpecCounter
{
    private readonly ProcHexSession _session;
    private readonly Reporter _reporter;
    private readonly Func<string, string> _show;
    private readonly List<Entry> _entries;
    private readonly Lock _gate = new();
    private readonly List<LibraryListChange> _early = [];
    private readonly CountingMode _mode;
    private bool _armed;

    /// <summary>Counts <paramref name="specs"/>; <paramref name="show"/> says how a raw symbol name is shown (demangled, unless --no-demangle).</summary>
    public SpecCounter(ProcHexSession session, Reporter reporter, IEnumerable<CountSpec> specs, Func<string, string> show, CountingMode mode = CountingMode.InVictim)
    {
        _mode = mode;
        _session = session;
        _reporter = reporter;
        _show = show;
        _entries = [.. specs.DistinctBy(s => s.Text).Select(s => new Entry(s))];
    }

    public long TotalHits => _entries.Sum(e => e.Hits);

    /// <summary>The live line: each SPEC's hits so far.</summary>
    public string LiveText => string.Join("  ", _entries.Select(e => $"{e.Spec.Text} {e.Hits}"));

    /// <summary>Each SPEC at the end: its hits over the run, where it was counted, and whether the final image had it.</summary>
    public IReadOnlyList<SpecCount> Counts
    {
        get
        {
            lock (_gate)
            {
                return [.. _entries.Select(Count)];
            }
        }
    }

    /// <summary>The SPECs no image ever defined (each gets a warning and the status "not found").</summary>
    public IEnumerable<SpecCount> NeverFound => Counts.Where(c => c.Status == SpecCount.NotFound);

    /// <summary>The SPECs the final image does not define (what --strict fails on).</summary>
    public IEnumerable<SpecCount> MissingInFinalImage => Counts.Where(c => c.Status != SpecCount.Planted);

    /// <summary>
    /// At the rendezvous, with the victim idle: sets every SPEC's pending breakpoint (planted now where the current
    /// image defines it, pending otherwise).
    /// </summary>
    public async Task PlantAtRendezvousAsync(ProcessHandle handle)
    {
        List<LibraryListChange> early;
        lock (_gate)
        {
            _armed = true;
            early = [.. _early];
            _early.Clear();
        }

        foreach (var change in early)
        {
            ReportChange(change);
        }

        foreach (var entry in _entries)
        {
            entry.Breakpoint = await _session.SetPendingCounterAsync(handle, entry.Spec.Text, _mode);
        }
    }

    /// <summary>The session's library-list callback: one event per change (held back until the rendezvous line is out).</summary>
    public void OnLibraryListChanged(LibraryListChange change)
    {
        lock (_gate)
        {
            if (!_armed)
            {
                _early.Add(change);
                return;
            }
        }

        ReportChange(change);
    }

    /// <summary>The session's pending-breakpoint callback: "planted" and "pending" events.</summary>
    public void OnPendingBreakpointChanged(PendingBreakpointChange change)
    {
        var spec = change.Breakpoint.Spec;
        if (change.Kind == PendingBreakpointChangeKind.Pending)
        {
            _reporter.Event("pending", new JsonObject { ["spec"] = spec, ["reason"] = change.Reason }, $"{spec} is pending: {change.Reason}");
            return;
        }

        var locations = change.Sites.Select(Location).ToList();
        var first = change.Sites[0];
        var mode = ModeOf(change.Sites);
        var how = mode == TrapMode && first.Fallback is { } why ? $"{mode}: {why}" : mode;
        var text = locations.Count == 1
            ? $"counting {spec} at {locations[0]} ({Reporter.Hex(first.Address)}, {how})"
            : $"counting {spec} at {locations.Count} places: {string.Join(", ", locations.Take(4))}{(locations.Count > 4 ? ", ..." : "")} ({how})";
        var json = new JsonObject
        {
            ["spec"] = spec,
            ["address"] = Reporter.Hex(first.Address),
            ["location"] = locations[0],
            ["sites"] = change.Sites.Count,
            ["image"] = first.Image,
            ["mode"] = mode,
        };
        if (change.Sites.FirstOrDefault(s => s.Fallback is not null)?.Fallback is { } fallback)
        {
            json["fallback"] = fallback;
        }

        if (first.Implementation is { } implementation)
        {
            // Only for a GNU indirect function: the event keeps its shape for every other SPEC.
            json["implementation"] = implementation;
        }

        _reporter.Event("planted", json, text);
    }

    /// <summary><c>libc.so.6`malloc</c>; a GNU indirect function with the implementation its resolver chose: <c>strlen → libc.so.6`__strlen_avx2</c>.</summary>
    private string Location(PlantedSymbol site) =>
        site.Implementation is { } implementation ? $"{_show(site.Symbol)} → {implementation}" : $"{site.ObjectName}`{_show(site.Symbol)}";

    private SpecCount Count(Entry entry)
    {
        var breakpoint = entry.Breakpoint;
        var ever = breakpoint?.EverPlanted ?? [];
        var images = breakpoint?.ImagesSearched ?? [];
        var status = breakpoint is { FoundInCurrentImage: true } ? SpecCount.Planted
            : ever.Count == 0 ? SpecCount.NotFound
            : SpecCount.NotInFinalImage;

        // Where it was counted last: the final image's sites, or the last image that had it.
        var lastImage = ever.Count == 0 ? null : ever[^1].Image;
        var location = string.Join(", ", ever.Where(s => s.Image == lastImage).Select(Location).Distinct(StringComparer.Ordinal));
        var counted = ever.Where(s => s.Image == lastImage).ToList();
        return new SpecCount(entry.Spec.Text, location.Length == 0 ? null : location, entry.Hits, status, images)
        {
            Mode = counted.Count == 0 ? null : ModeOf(counted),
            Fallback = counted.FirstOrDefault(s => s.Fallback is not null)?.Fallback,
        };
    }

    private const string InVictimMode = "in-victim", TrapMode = "trap", MixedMode = "mixed";

    /// <summary>in-victim, trap, or mixed when some sites of the SPEC count one way and some the other.</summary>
    private static string ModeOf(IReadOnlyList<PlantedSymbol> sites) =>
        sites.All(s => s.Counting == CountingMode.InVictim) ? InVictimMode
        : sites.All(s => s.Counting != CountingMode.InVictim) ? TrapMode
        : MixedMode;

    private void ReportChange(LibraryListChange change)
    {
        var added = new JsonArray([.. change.Added.Select(o => (JsonNode)o.Path)]);
        var removed = new JsonArray([.. change.Removed.Select(o => (JsonNode)o.Path)]);
        var kind = change.Event switch
        {
            RtldEventKind.Preinit => "preinit",
            RtldEventKind.Postinit => "postinit",
            _ => "dlactivity",
        };
        var words = change.Added.Select(o => "+" + o.Name).Concat(change.Removed.Select(o => "-" + o.Name));
        _reporter.Event(
            "libraries",
            new JsonObject { ["pid"] = change.Handle.Pid, ["kind"] = kind, ["added"] = added, ["removed"] = removed },
            $"pid {change.Handle.Pid}: library list changed ({kind}): {string.Join(' ', words)}");
    }

    private sealed class Entry(CountSpec spec)
    {
        public CountSpec Spec { get; } = spec;

        public PendingBreakpoint? Breakpoint { get; set; }

        public long Hits => Breakpoint?.Hits ?? 0;
    }
}
