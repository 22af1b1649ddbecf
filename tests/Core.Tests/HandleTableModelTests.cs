using CsCheck;
using ProcHex.Core.Tests.Ports;

namespace ProcHex.Core.Tests;

/// <summary>
/// Model-based test of the handle table (S5–S8): random read-only grabs, control grabs and releases against
/// a plain model of references, LRU order and the cache limit.
/// </summary>
public sealed class HandleTableModelTests
{
    private const int LruLimit = 3;
    private static readonly Gen<int> Pid = Gen.Int[1, 6];

    private sealed class Actual
    {
        public TracerScript Tracer { get; } = new();

        public ProcHexSession Session { get; }

        public Actual() => Session = Tracer.Session(LruLimit);

        public Dictionary<int, List<ProcessHandle>> Held { get; } = [];

        public override string ToString() => string.Join(" ", Session.Handles.Select(h => $"{h.Pid}:{h.Victim.References}{(h.IsReadOnly ? "r" : "c")}"));
    }

    private sealed class Model
    {
        private sealed class Entry(int pid, bool readOnly)
        {
            public int Pid { get; } = pid;

            public int Refs { get; set; } = 1;

            public bool ReadOnly { get; } = readOnly;

            public bool Stale { get; set; }

            public bool Cacheable => ReadOnly && !Stale;
        }

        // Most recent first, stale entries included while referenced.
        private readonly List<Entry> _lru = [];
        private readonly Dictionary<int, List<Entry>> _held = [];

        private int Cached => _lru.Count(e => e.Cacheable);

        public override string ToString() => string.Join(" ", _lru.Select(e => $"{e.Pid}:{e.Refs}{(e.ReadOnly ? "r" : "c")}"));

        public void Grab(int pid, bool readOnly)
        {
            var entry = _lru.Find(e => e.Pid == pid && !e.Stale);
            if (entry is not null && entry.ReadOnly && !readOnly)
            {
                entry.Stale = true;
                if (entry.Refs == 0)
                {
                    _lru.Remove(entry);
                }

                entry = null;
            }

            if (entry is not null)
            {
                _lru.Remove(entry);
                entry.Refs++;
            }
            else
            {
                if (readOnly && Cached >= LruLimit && _lru.FindLast(e => e.Cacheable && e.Refs == 0) is { } evicted)
                {
                    _lru.Remove(evicted);
                }

                entry = new Entry(pid, readOnly);
            }

            _lru.Insert(0, entry);
            (_held.TryGetValue(pid, out var stack) ? stack : _held[pid] = []).Add(entry);
        }

        public void Release(int pid)
        {
            if (!_held.TryGetValue(pid, out var stack) || stack.Count == 0)
            {
                return;
            }

            var entry = stack[^1];
            stack.RemoveAt(stack.Count - 1);
            if (--entry.Refs == 0 && (!entry.Cacheable || Cached > LruLimit))
            {
                _lru.Remove(entry);
            }
        }
    }

    [Fact]
    [Trait("Spec", "S5")]
    [Trait("Spec", "S6")]
    [Trait("Spec", "S7")]
    [Trait("Spec", "S8")]
    public void Handle_table_matches_a_plain_model()
    {
        Gen.Const(() => (new Actual(), new Model())).SampleModelBased(
            GenOperation.Create<Actual, Model, int>(Pid, p => $"grab-ro {p}",
                (a, p) => GrabActual(a, p, GrabMode.ReadOnly), (m, p) => m.Grab(p, readOnly: true)),
            GenOperation.Create<Actual, Model, int>(Pid, p => $"grab-ctl {p}",
                (a, p) => GrabActual(a, p, GrabMode.Control), (m, p) => m.Grab(p, readOnly: false)),
            GenOperation.Create<Actual, Model, int>(Pid, p => $"release {p}",
                ReleaseActual, (m, p) => m.Release(p)),
            equal: (a, m) => a.ToString() == m.ToString()
                && a.Session.Table.IdleCachedCount <= LruLimit,
            iter: 300);
    }

    private static void GrabActual(Actual a, int pid, GrabMode mode)
    {
        var handle = a.Session.GrabAsync(pid, mode).GetAwaiter().GetResult();
        (a.Held.TryGetValue(pid, out var list) ? list : a.Held[pid] = []).Add(handle);
    }

    private static void ReleaseActual(Actual a, int pid)
    {
        if (a.Held.TryGetValue(pid, out var list) && list.Count > 0)
        {
            var handle = list[^1];
            list.RemoveAt(list.Count - 1);
            a.Session.ReleaseAsync(handle).GetAwaiter().GetResult();
        }
    }
}
