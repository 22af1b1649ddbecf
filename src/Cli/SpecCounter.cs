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
    private readonly bool _byThread;

    /// <summary>With --by thread: the hits of each SPEC (by index) in each thread at each address.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(int Spec, int Pid, int Tid, ulong Address), long> _threadHits = new();

    /// <summary>With --by thread: each thread's name, read when its first hit comes (null when unknown).</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(int Pid, int Tid), string?> _threadNames = new();
    private readonly List<LoadedObject> _objectsSeen = [];
    private bool _armed;

    /// <summary>
    /// Counts <paramref name="specs"/>; <paramref name="show"/> says how a raw symbol name is shown (demangled, unless
    /// --no-demangle). <paramref name="byThread"/> (--by thread) counts every SPEC with a breakpoint whose handler notes
    /// each hit's thread: a call counted in the victim has no thread.
    /// </summary>
    public SpecCounter(ProcHexSession session, Reporter reporter, IEnumerable<CountSpec> specs, Func<string, string> show, CountingMode mode = CountingMode.InVictim, bool byThread = false)
    {
        _mode = mode;
        _byThread = byThread;
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

    /// <summary>
    /// The wildcard SPECs that matched no function in any object of any image: an error (issue 20 item 1), reported with
    /// the objects searched, and exit 1 after the table.
    /// </summary>
    public IEnumerable<SpecCount> UnmatchedPatterns => Counts.Where(c => c.PerFunction is not null && c.Status == SpecCount.NotFound);

    /// <summary>
    /// The objects a SPEC was looked up in, by name, over the run: its own object when it names one that was loaded,
    /// otherwise every object seen (the executable and every library of every image).
    /// </summary>
    public IReadOnlyList<string> ObjectsSearched(SpecCount count, out bool objectLoaded)
    {
        var spec = CountSpec.TryParse(count.Spec, out _);
        List<string> all;
        lock (_gate)
        {
            all = [.. _objectsSeen.Select(o => o.Name).Distinct(StringComparer.Ordinal)];
            objectLoaded = true;
            if (spec?.ObjectName is not { } name)
            {
                return all;
            }

            if (name == "a.out")
            {
                return [.. count.Images.Select(Path.GetFileName).OfType<string>().Distinct(StringComparer.Ordinal)];
            }

            var named = _objectsSeen.Where(o => o.Name == name || o.Path == name || o.Name.Split('.')[0] == name)
                .Select(o => o.Name).Distinct(StringComparer.Ordinal).ToList();
            objectLoaded = named.Count > 0;
            return objectLoaded ? named : all;
        }
    }

    /// <summary>
    /// The counts as <c>--json</c>'s <c>counts</c> and <c>--interval</c> key them: a SPEC's total under the SPEC, a
    /// wildcard SPEC's functions each under <c>object`function</c> (a function two SPECs count is keyed once, by the first).
    /// </summary>
    public static Dictionary<string, long> Flat(IReadOnlyList<SpecCount> counts)
    {
        var flat = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var c in counts)
        {
            if (c.PerFunction is { } functions)
            {
                foreach (var f in functions)
                {
                    flat.TryAdd(f.Key, f.Hits);
                }
            }
            else
            {
                flat[c.Spec] = c.Hits;
            }
        }

        return flat;
    }

    /// <summary>
    /// The summary's breakdown (issue 20 item 3): by pid, each process's hits per function (<c>object`function</c> of
    /// every site the SPECs counted in it); by object, each object's hits; by thread, each thread's hits per function,
    /// with its name; null by SPEC (the counts are that already). A function two SPECs count is counted once, by the
    /// first (as <see cref="Flat"/> keys it). Most hits first.
    /// </summary>
    public IReadOnlyList<BreakdownRow>? Rows(Breakdown by)
    {
        if (by == Breakdown.Spec)
        {
            return null;
        }

        var counted = CountedFunctions();
        if (by == Breakdown.Thread)
        {
            var perThread = new Dictionary<(int Pid, int Tid, string Object, string Function), long>();
            foreach (var ((spec, pid, tid, address), count) in _threadHits)
            {
                if (counted.TryGetValue((spec, pid, address), out var f))
                {
                    perThread[(pid, tid, f.Object, f.Function)] = perThread.GetValueOrDefault((pid, tid, f.Object, f.Function)) + count;
                }
            }

            return Ordered(perThread.Select(r => new BreakdownRow(r.Key.Pid, r.Key.Object, r.Key.Function, r.Value)
            {
                Tid = r.Key.Tid,
                Comm = _threadNames.GetValueOrDefault((r.Key.Pid, r.Key.Tid)),
            }));
        }

        var hits = new Dictionary<(int Pid, string Object, string Function), long>();
        for (var spec = 0; spec < _entries.Count; spec++)
        {
            foreach (var breakpoint in _entries[spec].Breakpoints)
            {
                foreach (var (site, count) in breakpoint.HitsBySite)
                {
                    if (counted.TryGetValue((spec, breakpoint.Handle.Pid, site.Address), out var f))
                    {
                        hits[(breakpoint.Handle.Pid, f.Object, f.Function)] = hits.GetValueOrDefault((breakpoint.Handle.Pid, f.Object, f.Function)) + count;
                    }
                }
            }
        }

        return Ordered(by == Breakdown.Pid
            ? hits.Select(h => new BreakdownRow(h.Key.Pid, h.Key.Object, h.Key.Function, h.Value))
            : hits.GroupBy(h => h.Key.Object, StringComparer.Ordinal).Select(g => new BreakdownRow(null, g.Key, null, g.Sum(h => h.Value))));
    }

    /// <summary>
    /// The function each SPEC (by index) counts at each address of each process, for the sites whose function (in that
    /// process) no earlier SPEC counts: the breakdowns count a function once, by its first SPEC.
    /// </summary>
    private Dictionary<(int Spec, int Pid, ulong Address), (string Object, string Function)> CountedFunctions()
    {
        var first = new Dictionary<(int Pid, string Object, string Function), int>();
        var counted = new Dictionary<(int Spec, int Pid, ulong Address), (string Object, string Function)>();
        for (var spec = 0; spec < _entries.Count; spec++)
        {
            foreach (var breakpoint in _entries[spec].Breakpoints)
            {
                var pid = breakpoint.Handle.Pid;
                foreach (var site in breakpoint.EverPlanted)
                {
                    var function = (site.ObjectName, _show(site.Symbol));
                    if (first.TryAdd((pid, function.ObjectName, function.Item2), spec) || first[(pid, function.ObjectName, function.Item2)] == spec)
                    {
                        counted.TryAdd((spec, pid, site.Address), function);
                    }
                }
            }
        }

        return counted;
    }

    /// <summary>Most hits first, then by pid, tid, object and function.</summary>
    private static List<BreakdownRow> Ordered(IEnumerable<BreakdownRow> rows) =>
        [.. rows.OrderByDescending(r => r.Count).ThenBy(r => r.Pid).ThenBy(r => r.Tid)
            .ThenBy(r => r.Object, StringComparer.Ordinal).ThenBy(r => r.Function, StringComparer.Ordinal)];

    /// <summary>A hit of SPEC <paramref name="spec"/> with --by thread: counted for its thread, whose name is read at its first hit.</summary>
    private void OnThreadHit(int spec, BreakpointHit hit)
    {
        var pid = hit.Handle.Pid;
        _ = _threadHits.AddOrUpdate((spec, pid, hit.ThreadId, hit.Address), 1, static (_, n) => n + 1);
        if (_threadNames.ContainsKey((pid, hit.ThreadId)))
        {
            return;
        }

        try
        {
            foreach (var thread in hit.Handle.Threads)
            {
                _ = _threadNames.TryAdd((pid, thread.ThreadId), thread.Name);
            }
        }
        catch (ProcHexException)
        {
            // The names are a nicety: the thread still counts, unnamed.
        }

        _ = _threadNames.TryAdd((pid, hit.ThreadId), null);
    }

    /// <summary>The SPECs the final image does not define (what --strict fails on).</summary>
    public IEnumerable<SpecCount> MissingInFinalImage => Counts.Where(c => c.Status != SpecCount.Planted);

    /// <summary>
    /// At the rendezvous, with the victim idle: sets every SPEC's pending breakpoint (planted now where the current
    /// image defines it, pending otherwise).
    /// </summary>
    public async Task PlantAtRendezvousAsync(ProcessHandle handle)
    {
        List<LibraryListChange> early;
        IReadOnlyList<LoadedObject> objects;
        try
        {
            objects = handle.Objects;
        }
        catch (ProcHexException)
        {
            objects = [];
        }

        lock (_gate)
        {
            _objectsSeen.AddRange(objects);
            _armed = true;
            early = [.. _early];
            _early.Clear();
        }

        foreach (var change in early)
        {
            ReportChange(change);
        }

        for (var i = 0; i < _entries.Count; i++)
        {
            var spec = i;
            var entry = _entries[spec];
            entry.Add(_byThread
                ? await _session.SetPendingBreakpointAsync(handle, entry.Spec.Text, hit => OnThreadHit(spec, hit))
                : await _session.SetPendingCounterAsync(handle, entry.Spec.Text, _mode));
        }
    }

    /// <summary>The session's library-list callback: one event per change (held back until the rendezvous line is out).</summary>
    public void OnLibraryListChanged(LibraryListChange change)
    {
        lock (_gate)
        {
            _objectsSeen.AddRange(change.Added);
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
        if (_entries.Find(e => e.Spec.Text == spec) is { Spec.IsWildcard: true })
        {
            ReportPlanting(spec, change);
        }
    }

    /// <summary>
    /// A wildcard SPEC's planting and its cost (issue 20 item 1): how many functions in which objects, how each counts,
    /// and how long the lookup and the writes took. A new event, so that the planted event keeps its shape.
    /// </summary>
    private void ReportPlanting(string spec, PendingBreakpointChange change)
    {
        var objects = change.Sites.Select(s => s.ObjectName).Distinct(StringComparer.Ordinal).ToList();
        var inVictim = change.Sites.Count(s => s.Counting == CountingMode.InVictim);
        var trap = change.Sites.Count - inVictim;
        var ms = Math.Round((change.PlantingTime ?? TimeSpan.Zero).TotalMilliseconds, 1);
        var functions = change.Sites.Count;
        var text = string.Create(
            System.Globalization.CultureInfo.InvariantCulture,
            $"planted {spec} on {functions} function{(functions == 1 ? "" : "s")} in {objects.Count} object{(objects.Count == 1 ? "" : "s")} ({string.Join(", ", objects.Take(4))}{(objects.Count > 4 ? ", ..." : "")}) in {ms:0.0} ms: {inVictim} in-victim, {trap} trap");
        _reporter.Event(
            "planting",
            new JsonObject
            {
                ["spec"] = spec,
                ["functions"] = functions,
                ["objects"] = new JsonArray([.. objects.Select(o => (JsonNode)o)]),
                ["in_victim"] = inVictim,
                ["trap"] = trap,
                ["ms"] = ms,
                ["image"] = change.Sites[0].Image,
            },
            text);
    }

    /// <summary><c>libc.so.6`malloc</c>; a GNU indirect function with the implementation its resolver chose: <c>strlen → libc.so.6`__strlen_avx2</c>.</summary>
    private string Location(PlantedSymbol site) =>
        site.Implementation is { } implementation ? $"{_show(site.Symbol)} → {implementation}" : $"{site.ObjectName}`{_show(site.Symbol)}";

    /// <summary>A SPEC over every process it counts in (attach takes several): hits summed, images and sites in process order.</summary>
    private SpecCount Count(Entry entry)
    {
        var breakpoints = entry.Breakpoints;
        var ever = breakpoints.SelectMany(b => b.EverPlanted).ToList();
        var images = breakpoints.SelectMany(b => b.ImagesSearched).Distinct(StringComparer.Ordinal).ToList();
        var status = breakpoints.Any(b => b.FoundInCurrentImage) ? SpecCount.Planted
            : ever.Count == 0 ? SpecCount.NotFound
            : SpecCount.NotInFinalImage;

        // Where it was counted last: the final image's sites, or the last image that had it.
        var lastImage = ever.Count == 0 ? null : ever[^1].Image;
        var location = string.Join(", ", ever.Where(s => s.Image == lastImage).Select(Location).Distinct(StringComparer.Ordinal));
        var counted = ever.Where(s => s.Image == lastImage).ToList();
        var perFunction = entry.Spec.IsWildcard ? PerFunction(breakpoints) : null;
        var hits = perFunction?.Sum(f => f.Hits) ?? entry.Hits;
        return new SpecCount(entry.Spec.Text, location.Length == 0 ? null : location, hits, status, images)
        {
            Mode = counted.Count == 0 ? null : ModeOf(counted),
            Fallback = counted.FirstOrDefault(s => s.Fallback is not null)?.Fallback,
            PerFunction = perFunction,
        };
    }

    /// <summary>
    /// A wildcard SPEC's hits per function, <c>object`function</c>, over every image it was planted in (a function
    /// planted again after a dlopen or an exec keeps one count), in the order they were first planted.
    /// </summary>
    private List<FunctionCount> PerFunction(PendingBreakpoint[] breakpoints)
    {
        var order = new List<string>();
        var hits = new Dictionary<string, long>(StringComparer.Ordinal);
        var sites = new Dictionary<string, List<PlantedSymbol>>(StringComparer.Ordinal);
        foreach (var (site, count) in breakpoints.SelectMany(b => b.HitsBySite))
        {
            var key = $"{site.ObjectName}`{_show(site.Symbol)}";
            if (hits.TryAdd(key, 0))
            {
                order.Add(key);
                sites[key] = [];
            }

            hits[key] += count;
            sites[key].Add(site);
        }

        return [.. order.Select(k => new FunctionCount(k, hits[k], ModeOf(sites[k])))];
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

        /// <summary>Its pending breakpoint in each process, in the order they were attached (replaced whole: the live line reads it).</summary>
        public PendingBreakpoint[] Breakpoints { get; private set; } = [];

        public long Hits => Breakpoints.Sum(b => b.Hits);

        public void Add(PendingBreakpoint breakpoint) => Breakpoints = [.. Breakpoints, breakpoint];
    }
}
