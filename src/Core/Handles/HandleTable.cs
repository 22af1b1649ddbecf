using ProcHex.Victims;

namespace ProcHex.Handles;

/// <summary>
/// Which victims a session holds (dt_proc_hash): lookup by pid, reference counts, the LRU list (most recent
/// first) and the cache of read-only handles (S5–S8, S22). Pure bookkeeping: destroying a victim is the
/// session's job. Callers hold <see cref="Gate"/>.
/// </summary>
/// <remarks>
/// Every member is O(1) but <see cref="PickEviction"/>, which walks the cacheable victims from the least recent
/// end past those still referenced: its cost is the number of read-only handles in use, never the number held.
/// </remarks>
internal sealed class HandleTable
{
    private readonly Dictionary<int, Victim> _byPid = [];
    private readonly LinkedList<Victim> _lru = new();
    private readonly LinkedList<Victim> _cacheable = new();

    public HandleTable(int lruLimit) => LruLimit = lruLimit;

    public Lock Gate { get; } = new();

    public int LruLimit { get; }

    /// <summary>Cacheable handles, referenced or not (dph_lrucnt).</summary>
    public int CachedCount => _cacheable.Count;

    public int Count => _lru.Count;

    /// <summary>Unreferenced cacheable handles: what the cache actually keeps alive (a diagnostic; O(cached)).</summary>
    public int IdleCachedCount => _cacheable.Count(v => v.References == 0);

    /// <summary>The most recently used victim, or null when the table is empty.</summary>
    public Victim? MostRecent => _lru.First?.Value;

    /// <summary>Every held victim, most recently used first.</summary>
    public IReadOnlyList<Victim> MostRecentFirst => [.. _lru];

    /// <summary>
    /// S5/S6: the live handle for <paramref name="pid"/> with one more reference, or null when a new grab is
    /// needed. A read-only handle asked for control, or a handle whose pid now names another process, is marked
    /// stale and uncacheable, returned in <paramref name="staled"/>, and null is returned.
    /// </summary>
    public Victim? TryReuse(int pid, GrabMode mode, out Victim? staled)
    {
        staled = null;
        if (!_byPid.TryGetValue(pid, out var victim))
        {
            return null;
        }

        // A victim whose pid now names another process is never handed out again (issue 17 item 3).
        if ((victim.IsReadOnly && mode != GrabMode.ReadOnly) || victim.IsReplaced)
        {
            _byPid.Remove(pid);
            victim.Stale = true;
            Uncache(victim);
            staled = victim;
            return null;
        }

        Touch(victim);
        AddReference(victim);
        return victim;
    }

    /// <summary>S7: the least-recently-used unreferenced cacheable victim to destroy before caching another, if the cache is full.</summary>
    public Victim? PickEviction()
    {
        if (CachedCount < LruLimit)
        {
            return null;
        }

        for (var node = _cacheable.Last; node is not null; node = node.Previous)
        {
            if (node.Value.References == 0)
            {
                return node.Value;
            }
        }

        return null;
    }

    /// <summary>Adds a new victim at the front of the LRU list with one reference.</summary>
    public void Register(Victim victim)
    {
        victim.Registered = true;
        victim.Cacheable = victim.IsReadOnly;
        if (victim.Cacheable)
        {
            victim.CacheNode = _cacheable.AddFirst(victim);
        }

        _byPid[victim.Pid] = victim;
        victim.LruNode = _lru.AddFirst(victim);
        victim.References = 1;
    }

    /// <summary>S8: drops a reference; true when the victim must now be destroyed (it has been unregistered).</summary>
    public bool ReleaseReference(Victim victim)
    {
        if (--victim.References > 0)
        {
            return false;
        }

        if (victim.Cacheable && CachedCount <= LruLimit)
        {
            return false;
        }

        Unregister(victim);
        return true;
    }

    /// <summary>Removes a victim from every index; it no longer counts as held.</summary>
    public void Unregister(Victim victim)
    {
        if (!victim.Registered)
        {
            return;
        }

        victim.Registered = false;
        Uncache(victim);
        if (_byPid.TryGetValue(victim.Pid, out var current) && current == victim)
        {
            _byPid.Remove(victim.Pid);
        }

        if (victim.LruNode is { } node)
        {
            _lru.Remove(node);
            victim.LruNode = null;
        }
    }

    private void Uncache(Victim victim)
    {
        if (victim.CacheNode is not { } node)
        {
            return;
        }

        _cacheable.Remove(node);
        victim.CacheNode = null;
        victim.Cacheable = false;
    }

    private void Touch(Victim victim)
    {
        if (victim.CacheNode is { } cached)
        {
            _cacheable.Remove(cached);
            _cacheable.AddFirst(cached);
        }

        if (victim.LruNode is { } node)
        {
            _lru.Remove(node);
            _lru.AddFirst(node);
        }
    }

    private static void AddReference(Victim victim) => victim.References++;
}
