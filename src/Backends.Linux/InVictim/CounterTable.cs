namespace ProcHex.Backends.Linux.InVictim;

/// <summary>
/// The in-victim counters of one victim and the arenas they live in. An exec or death takes the arenas and the patched
/// text with the image (<see cref="ForgetImage"/>); the tracer's mappings stay, so the counts stay readable, until
/// <see cref="Dispose"/> keeps their last values and unmaps them. Owner only, except what the counters read.
/// </summary>
internal sealed class CounterTable : IDisposable
{
    private readonly List<CounterArena> _arenas = [];
    private readonly List<SharedCounter> _counters = [];
    private readonly List<ISharedMapping> _mappings = [];
    private readonly Dictionary<(string Path, ulong Start, ulong End), BranchTargets> _branchTargets = [];

    /// <summary>The counters of the current image, live or removed (a fork child may hold either's jump).</summary>
    public IReadOnlyList<SharedCounter> Counters => _counters;

    public IEnumerable<SharedCounter> Live => _counters.Where(c => c.Live);

    /// <summary>
    /// The branch targets of a file's code mapped at [start, end), swept once per image: the same file at the same
    /// address is the same code. Anonymous code (a JIT's) is swept again each time, and so is a sweep that failed (null).
    /// </summary>
    public BranchTargets? BranchTargetsOf(string path, ulong start, ulong end, Func<BranchTargets?> sweep)
    {
        if (path.Length == 0 || path[0] != '/')
        {
            return sweep();
        }

        if (!_branchTargets.TryGetValue((path, start, end), out var targets) && (targets = sweep()) is not null)
        {
            _branchTargets[(path, start, end)] = targets;
        }

        return targets;
    }

    /// <summary>An arena of the current image with a free slot within reach of <paramref name="entry"/>.</summary>
    public CounterArena? ArenaFor(ulong entry) => _arenas.Find(a => !a.IsFull && a.Reaches(entry));

    public void AddArena(CounterArena arena, ISharedMapping mapping)
    {
        _arenas.Add(arena);
        _mappings.Add(mapping);
    }

    public void Add(SharedCounter counter) => _counters.Add(counter);

    /// <summary>A live counter whose patched bytes meet [<paramref name="start"/>, <paramref name="end"/>), if any.</summary>
    public SharedCounter? Overlapping(ulong start, ulong end)
    {
        foreach (var counter in _counters)
        {
            if (counter.Live && counter.Trampoline.Site.PatchAddress < end && start < counter.Trampoline.Site.ResumeAddress)
            {
                return counter;
            }
        }

        return null;
    }

    /// <summary>The live counter of the function at <paramref name="entry"/>, if any.</summary>
    public SharedCounter? At(ulong entry) => _counters.Find(c => c.Live && c.Entry == entry);

    /// <summary>The image is gone (exec, death, release): its text and arenas with it; the counts stay readable.</summary>
    public void ForgetImage()
    {
        foreach (var counter in _counters)
        {
            counter.Live = false;
        }

        _counters.Clear();
        _arenas.Clear();
        _branchTargets.Clear();
    }

    public void Dispose()
    {
        ForgetImage();
        foreach (var mapping in _mappings)
        {
            mapping.Dispose();
        }

        _mappings.Clear();
    }
}
