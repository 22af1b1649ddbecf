namespace ProcHex.Elf;

/// <summary>
/// Parsed ELF files by identity, so a refresh after a dlopen parses only the new objects. A file is the same file
/// while its path, device and inode (from the mapping) and its size and modification time (from the file system)
/// are; a package upgrade that replaces a library in place changes one of them. Files that are not ELF (fonts,
/// locale archives, a .NET host's mapped assemblies) are remembered too, so they are opened once, not on every refresh.
/// Thread-safe.
/// </summary>
/// <remarks>
/// Each symbol table has its own cache (its sweep forgets what its victim unmapped), but a parsed file is shared
/// by every cache in the process through <see cref="Shared"/>, weakly: 1,000 victims that map the same libc parse
/// it once and hold one copy (a parsed libc is hundreds of KiB; parsing it per victim made grabbing 1,000 victims
/// take half a minute). An <see cref="ElfFile"/> is immutable once parsed, so sharing it across threads is safe.
/// </remarks>
public sealed class ElfFileCache
{
    private readonly Dictionary<Key, Entry> _entries = [];
    private readonly Lock _lock = new();

    /// <summary>How many parsed files the cache holds now.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>How many files were parsed (not served from the cache) since this cache was made; for tests and logs.</summary>
    public int ParseCount { get; private set; }

    /// <summary>
    /// The parsed file at <paramref name="path"/>, or null with <paramref name="error"/> saying why it is not
    /// usable (not ELF, malformed, unreadable).
    /// </summary>
    public ElfFile? GetOrOpen(string path, ulong device, ulong inode, out string? error)
    {
        ArgumentNullException.ThrowIfNull(path);
        long length;
        DateTime written;
        try
        {
            var info = new FileInfo(path);
            length = info.Length;
            written = info.LastWriteTimeUtc;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error = $"{path}: {e.Message}";
            return null;
        }

        var key = new Key(path, device, inode, length, written);
        lock (_lock)
        {
            if (_entries.TryGetValue(key, out var cached))
            {
                cached.Used = true;
                error = cached.Error;
                return cached.File;
            }
        }

        // Parse outside the lock: a big library takes milliseconds and other readers need not wait for it.
        var entry = new Entry { Used = true };
        var parsed = false;
        if (Shared.TryGet(key) is { } known)
        {
            entry.File = known;
        }
        else
        {
            parsed = true;
            try
            {
                entry.File = Shared.Add(key, ElfFile.Open(path));
            }
            catch (Exception e) when (e is ElfFormatException or IOException or UnauthorizedAccessException)
            {
                entry.Error = e.Message;
            }
        }

        lock (_lock)
        {
            if (parsed)
            {
                ParseCount++;
            }

            _entries[key] = entry;
        }

        error = entry.Error;
        return entry.File;
    }

    /// <summary>Forgets every file not asked for since the previous sweep (objects that were unmapped).</summary>
    public void Sweep()
    {
        lock (_lock)
        {
            foreach (var (key, entry) in _entries.ToArray())
            {
                if (!entry.Used)
                {
                    _entries.Remove(key);
                }

                entry.Used = false;
            }
        }
    }

    /// <summary>Forgets every parsed file.</summary>
    public void Clear()
    {
        lock (_lock)
        {
            _entries.Clear();
        }
    }

    private readonly record struct Key(string Path, ulong Device, ulong Inode, long Length, DateTime Written);

    /// <summary>
    /// The parsed files of every cache in the process, held weakly: a file stays while some cache (some victim)
    /// still uses it. Dead entries are pruned whenever the table has doubled since the last pruning.
    /// </summary>
    private static class Shared
    {
        private static readonly Dictionary<Key, WeakReference<ElfFile>> Files = [];
        private static readonly Lock Gate = new();
        private static int _pruneAt = 64;

        public static ElfFile? TryGet(Key key)
        {
            lock (Gate)
            {
                return Files.TryGetValue(key, out var weak) && weak.TryGetTarget(out var file) ? file : null;
            }
        }

        /// <summary>Keeps <paramref name="file"/>, or returns the copy another cache parsed meanwhile.</summary>
        public static ElfFile Add(Key key, ElfFile file)
        {
            lock (Gate)
            {
                if (Files.TryGetValue(key, out var weak) && weak.TryGetTarget(out var other))
                {
                    return other;
                }

                Files[key] = new WeakReference<ElfFile>(file);
                if (Files.Count >= _pruneAt)
                {
                    foreach (var (k, w) in Files.ToArray())
                    {
                        if (!w.TryGetTarget(out _))
                        {
                            Files.Remove(k);
                        }
                    }

                    _pruneAt = Math.Max(64, Files.Count * 2);
                }

                return file;
            }
        }
    }

    private sealed class Entry
    {
        public ElfFile? File { get; set; }

        public string? Error { get; set; }

        public bool Used { get; set; }
    }
}
