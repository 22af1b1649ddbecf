using System.Text.Json.Nodes;

namespace ProcHex.Cli;

/// <summary>
/// Plants one counting breakpoint per SPEC and keeps the SPECs whose object is not loaded yet pending until the
/// library list brings it in (the library-list callback runs on the victim's control loop, with the victim
/// stopped and locked, so planting from there completes at once).
/// </summary>
internal sealed class SpecCounter
{
    private readonly ProcHexSession _session;
    private readonly Reporter _reporter;
    private readonly List<Entry> _entries;
    private readonly Lock _gate = new();
    private readonly List<LibraryListChange> _early = [];
    private ProcessHandle? _handle;
    private bool _armed;
    private bool _initialLibrariesLoaded;
    private bool _sawPreinit;

    public SpecCounter(ProcHexSession session, Reporter reporter, IEnumerable<CountSpec> specs)
    {
        _session = session;
        _reporter = reporter;
        _entries = [.. specs.DistinctBy(s => s.Text).Select(s => new Entry(s))];
    }

    /// <summary>Completes with the message of a SPEC found unknown after the start (a pending one whose library came without it).</summary>
    public TaskCompletionSource<string> Fatal { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public long TotalHits => _entries.Sum(e => Interlocked.Read(ref e.Hits));

    /// <summary>The live line: each SPEC's hits so far.</summary>
    public string LiveText => string.Join("  ", _entries.Select(e => $"{e.Spec.Text} {Interlocked.Read(ref e.Hits)}"));

    public IReadOnlyList<SpecCount> Counts
    {
        get
        {
            lock (_gate)
            {
                return [.. _entries.Select(e => new SpecCount(e.Spec.Text, e.Location, Interlocked.Read(ref e.Hits), e.Status))];
            }
        }
    }

    /// <summary>
    /// At the rendezvous, with the victim idle: plants every SPEC whose object is loaded and leaves the rest pending.
    /// <paramref name="initialLibrariesLoaded"/> is false at the create rendezvous, where a bare symbol not in the
    /// executable waits for the initial libraries.
    /// </summary>
    /// <exception cref="CliFailure">A SPEC names a loaded object without that symbol, or a symbol no object has.</exception>
    public void PlantAtRendezvous(ProcessHandle handle, bool initialLibrariesLoaded)
    {
        List<LibraryListChange> early;
        lock (_gate)
        {
            _handle = handle;
            _initialLibrariesLoaded = initialLibrariesLoaded;
            early = [.. _early];
            _early.Clear();
        }

        foreach (var change in early)
        {
            ReportChange(change);
        }

        lock (_gate)
        {
            foreach (var entry in _entries)
            {
                if (TryPlant(handle, entry) is { } error)
                {
                    throw new CliFailure(1, error);
                }
            }

            _armed = true;
        }
    }

    /// <summary>The session's library-list callback: report, forget what went away, plant what became possible.</summary>
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
        lock (_gate)
        {
            _initialLibrariesLoaded = true;
            foreach (var entry in _entries)
            {
                Unplant(change, entry);
            }

            foreach (var entry in _entries.Where(e => e.Status is "pending" or "unloaded"))
            {
                if (TryPlant(change.Handle, entry) is { } error)
                {
                    entry.Status = "unknown";
                    Fatal.TrySetResult(error);
                }
            }
        }
    }

    /// <summary>Plants <paramref name="entry"/> if its object is loaded; returns an error for an unknown SPEC.</summary>
    private string? TryPlant(ProcessHandle handle, Entry entry)
    {
        var spec = entry.Spec;
        string lookup;
        if (spec.IsBare)
        {
            // Before the initial libraries are in, only the executable can answer for a bare symbol.
            lookup = _initialLibrariesLoaded ? spec.Symbol : "a.out`" + spec.Symbol;
        }
        else
        {
            var objects = handle.Objects;
            if (!objects.Select((o, i) => spec.Names(o, i == 0)).Any(x => x))
            {
                SetPending(entry, $"{spec.ObjectName} is not loaded yet");
                return null;
            }

            lookup = spec.Text;
        }

        ulong address;
        try
        {
            address = handle.LookupSymbol(lookup);
        }
        catch (SymbolNotFoundException ex)
        {
            if (spec.IsBare && !_initialLibrariesLoaded)
            {
                SetPending(entry, "not in the executable; waiting for the initial libraries");
                return null;
            }

            entry.Status = "unknown";
            return $"unknown SPEC '{spec.Text}': {ex.Message}";
        }

        var resolved = handle.ResolveAddress(address);
        var location = resolved switch
        {
            { Offset: 0 } r => $"{r.ObjectName}`{spec.Symbol}",
            { } r => r.ToString(),
            null => Reporter.Hex(address),
        };
        var planting = _session.SetBreakpointAsync(handle, address, _ => Interlocked.Increment(ref entry.Hits));
        entry.Location = location;
        entry.Status = "planted";
        entry.ObjectName = resolved?.ObjectName;
        if (planting.IsCompletedSuccessfully)
        {
            entry.Breakpoint = planting.Result;
        }
        else
        {
            // Not expected (the victim is idle or the control loop holds its lock), but never block here.
            planting.ContinueWith(
                t =>
                {
                    lock (_gate)
                    {
                        if (t.IsCompletedSuccessfully)
                        {
                            entry.Breakpoint = t.Result;
                        }
                    }
                },
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
        }

        _reporter.Event(
            "planted",
            new JsonObject { ["spec"] = spec.Text, ["address"] = Reporter.Hex(address), ["location"] = location },
            $"counting {spec.Text} at {location} ({Reporter.Hex(address)})");
        return null;
    }

    /// <summary>A planted SPEC whose image was replaced (exec) or whose library was unloaded goes back to pending.</summary>
    private void Unplant(LibraryListChange change, Entry entry)
    {
        if (entry.Status != "planted" || entry.Breakpoint is not { } breakpoint)
        {
            return;
        }

        if (!breakpoint.IsPlanted)
        {
            entry.Breakpoint = null;
            SetPending(entry, "its image was replaced", "unloaded");
            return;
        }

        if (change.Removed.Any(o => o.Name == entry.ObjectName || o.Path == entry.ObjectName))
        {
            entry.Breakpoint = null;
            try
            {
                _ = _session.RemoveBreakpointAsync(breakpoint);
            }
            catch (ProcHexException)
            {
                // Already gone with the victim.
            }

            SetPending(entry, $"{entry.ObjectName} was unloaded", "unloaded");
        }
    }

    private void SetPending(Entry entry, string reason, string status = "pending")
    {
        if (entry.Status is "pending" or "unloaded")
        {
            return;
        }

        entry.Status = status;
        _reporter.Event("pending", new JsonObject { ["spec"] = entry.Spec.Text, ["reason"] = reason }, $"{entry.Spec.Text} is pending: {reason}");
    }

    private void ReportChange(LibraryListChange change)
    {
        if (change.Event == RtldEventKind.Preinit)
        {
            // Preinit comes once per image: a second one means the process exec'd a new program.
            if (_sawPreinit && change.Added.Count > 0)
            {
                var program = change.Added[0].Path;
                _reporter.Event(
                    "exec",
                    new JsonObject { ["pid"] = change.Handle.Pid, ["program"] = program },
                    $"pid {change.Handle.Pid}: exec'd {program}");
            }

            _sawPreinit = true;
        }

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
        public long Hits;

        public CountSpec Spec { get; } = spec;

        public ClientBreakpoint? Breakpoint { get; set; }

        public string? Location { get; set; }

        public string? ObjectName { get; set; }

        public string Status { get; set; } = "new";
    }
}
