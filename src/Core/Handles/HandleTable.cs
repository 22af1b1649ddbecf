using ProcHex.Victims;

namespace ProcHex.Handles;

/// <summary>
/// Which victims a session holds (dt_proc_hash): lookup by pid, reference counts, the LRU list (most recent
/// first) and the cache of read-only handles (S5–S8, S22). Pure bookkeeping: destroying a victim is the
/// session's job. Every member is O(1) or O(log n); callers hold <see cref="Gate"/>.
/// </summary>
internal sealed class HandleTable
{
    private readonly Dictionary<int, Victim> _byPid = [];
    private readonly LinkedList<Victim> _lru = new();
    private readonly SortedSet<Victim> _evictable = new(Comparer<Victim>.Create((a, b) => a.LastAccess.CompareTo(b.LastAccess)));
    private long _clock;

    public HandleTable(int lruLimit) => LruLimit = lruLimit;

    public Lock Gate { get; } = new();

    public int LruLimit { get; }

    /// <summary>Cacheable handles, referenced or not (dph_lrucnt).</summary>
    public int CachedCount { get; private set; }

    public int Count => _lru.Count;

    /// <summary>Unreferenced cacheable handles: what the cache actually keeps alive.</summary>
    public int IdleCachedCount => _evictable.Count;

    /// <summary>The most recently used victim, or null when the table is empty.</summary>
    public Victim? MostRecent => _lru.First?.Value;

    /// <summary>Every held victim, most recently used first.</summary>
    public IReadOnlyList<Victim> MostRecentFirst => [.. _lru];

    /// <summary>
    /// S5/S6: the live handle for <paramref name="pid"/> with one more reference, or null when a new grab is
    /// needed. A read-only handle asked for control is marked stale and uncacheable, returned in
    /// <paramref name="staled"/>, and null is returned.
    /// </summary>
    public Victim? TryReuse(int pid, GrabMode mode, out Victim? staled)
    {
        staled = null;
        if (!_byPid.TryGetValue(pid, out var victim))
        {
            return null;
        }

        if (victim.IsReadOnly && mode != GrabMode.ReadOnly)
        {
            MarkStale(victim);
            staled = victim;
            return null;
        }

        Touch(victim);
        AddReference(victim);
        return victim;
    }

    /// <summary>S7: the least-recently-used unreferenced cacheable victim to destroy before caching another, if the cache is full.</summary>
    public Victim? PickEviction() => CachedCount >= LruLimit && _evictable.Count > 0 ? _evictable.Min : null;

    /// <summary>Adds a new victim at the front of the LRU list with one reference.</summary>
    public void Register(Victim victim)
    {
        victim.Registered = true;
        victim.Cacheable = victim.IsReadOnly;
        if (victim.Cacheable)
        {
            CachedCount++;
        }

        _byPid[victim.Pid] = victim;
        victim.LruNode = _lru.AddFirst(victim);
        victim.LastAccess = ++_clock;
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
            _evictable.Add(victim);
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
        _evictable.Remove(victim);
        if (victim.Cacheable)
        {
            CachedCount--;
            victim.Cacheable = false;
        }

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

    private void MarkStale(Victim victim)
    {
        victim.Stale = true;
        _byPid.Remove(victim.Pid);
        _evictable.Remove(victim);
        if (victim.Cacheable)
        {
            victim.Cacheable = false;
            CachedCount--;
        }
    }

    private void Touch(Victim victim)
    {
        _evictable.Remove(victim);
        victim.LastAccess = ++_clock;
        if (victim.LruNode is { } node)
        {
            _lru.Remove(node);
            _lru.AddFirst(node);
        }
    }

    private static void AddReference(Victim victim) => victim.References++;
}
