namespace ProcHex.Backends.Fake;

/// <summary>The port operations a <see cref="FaultPlan"/> can make fail.</summary>
public enum FakeOperation
{
    /// <summary>Starting a program.</summary>
    Create,
    /// <summary>Grabbing a process.</summary>
    Grab,
    /// <summary>Starting control of a grabbed or created process.</summary>
    BeginControl,
    /// <summary>Waiting for the next stop.</summary>
    WaitForStop,
    /// <summary>Taking a stop that is already there.</summary>
    TakeReadyStop,
    /// <summary>Resuming the victim.</summary>
    Resume,
    /// <summary>Leaving a stop for someone else to resume (S20).</summary>
    AwaitExternalResume,
    /// <summary>Asking a running victim to stop.</summary>
    RequestStop,
    /// <summary>Reading a thread's first argument (its rdi at a function's entry).</summary>
    ReadFirstArgument,
    /// <summary>Writing a trap.</summary>
    PlantBreakpoint,
    /// <summary>Restoring the text under a trap.</summary>
    RemoveBreakpoint,
    /// <summary>Stepping over a trap.</summary>
    StepOverBreakpoint,

    /// <summary>EIO makes a short read (half the bytes); other errors throw.</summary>
    ReadMemory,
    /// <summary>Writing victim memory.</summary>
    WriteMemory,
    /// <summary>Opening the dynamic linker's agent.</summary>
    OpenRtldAgent,
    /// <summary>Reading an rtld event's message.</summary>
    ReadEventMessage,
    /// <summary>Releasing the victim.</summary>
    Release,
    /// <summary>Re-reading the symbol tables.</summary>
    SymbolsRefresh,
    /// <summary>Forgetting the symbol tables (after an exec).</summary>
    SymbolsReset,

    /// <summary>Registers of a stopped thread, read when a breakpoint handler uses its hit context.</summary>
    ReadRegisters,

    /// <summary>Installing in-victim counters (issue 18): a failed install writes no jump.</summary>
    InstallCounters,

    /// <summary>Taking in-victim counters out: a failed removal leaves every jump in.</summary>
    RemoveCounters,
}

/// <summary>One kind of injected failure: an operation and the errno it failed with.</summary>
public readonly record struct FaultSite(FakeOperation Operation, int ErrorNumber)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Operation}/{Errno.Name(ErrorNumber)}";
}

/// <summary>
/// Which port calls fail, and how. A failing call changes nothing in the fake (a failed plant writes nothing,
/// a failed remove leaves the int3), so a run shows whether the core copes. Scripted faults fire on the n-th
/// call of an operation; seeded faults draw from their own <see cref="Random"/>, one draw per call, so the same
/// seed and the same call sequence fail the same calls.
/// </summary>
public sealed class FaultPlan
{
    /// <summary>The errors a seeded plan chooses from: gone, interrupted, refused, I/O.</summary>
    public static readonly IReadOnlyList<int> DefaultErrors = [Errno.ESRCH, Errno.EINTR, Errno.EPERM, Errno.EIO];

    private readonly List<ScriptedFault> _scripted = [];
    private readonly Dictionary<FakeOperation, int> _calls = [];
    private readonly HashSet<FaultSite> _hits = [];
    private readonly Random? _random;
    private readonly double _probability;
    private readonly HashSet<FakeOperation> _seededOperations;
    private readonly IReadOnlyList<int> _errors;

    /// <summary>A plan that injects nothing until faults are added.</summary>
    public FaultPlan()
        : this(null, 0, [], DefaultErrors)
    {
    }

    private FaultPlan(Random? random, double probability, IEnumerable<FakeOperation> operations, IReadOnlyList<int> errors)
    {
        _random = random;
        _probability = probability;
        _seededOperations = [.. operations];
        _errors = errors;
    }

    /// <summary>
    /// Each call of <paramref name="operations"/> (all but Create and Grab when empty) fails with
    /// <paramref name="probability"/>, with an errno drawn from <paramref name="errors"/> (<see cref="DefaultErrors"/> when null).
    /// </summary>
    public static FaultPlan Seeded(int seed, double probability, IReadOnlyList<int>? errors = null, params FakeOperation[] operations)
    {
        ArgumentNullException.ThrowIfNull(operations);
        ArgumentOutOfRangeException.ThrowIfNegative(probability);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(probability, 1.0);
        IEnumerable<FakeOperation> chosen = operations.Length > 0
            ? operations
            : Enum.GetValues<FakeOperation>().Where(o => o is not (FakeOperation.Create or FakeOperation.Grab));
        return new FaultPlan(new Random(seed), probability, chosen, errors ?? DefaultErrors);
    }

    /// <summary>The <paramref name="occurrence"/>-th call (1-based) of <paramref name="operation"/> fails with <paramref name="errno"/>.</summary>
    public FaultPlan FailAt(FakeOperation operation, int occurrence, int errno)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(occurrence, 1);
        _scripted.Add(new ScriptedFault(operation, occurrence, int.MaxValue, errno));
        return this;
    }

    /// <summary>Every call of <paramref name="operation"/> from the <paramref name="firstOccurrence"/>-th on fails.</summary>
    public FaultPlan FailFrom(FakeOperation operation, int firstOccurrence, int errno)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(firstOccurrence, 1);
        _scripted.Add(new ScriptedFault(operation, firstOccurrence, -1, errno));
        return this;
    }

    /// <summary>Makes every call of <paramref name="operation"/> fail with <paramref name="errno"/>.</summary>
    /// <param name="operation">The port operation.</param>
    /// <param name="errno">The error it fails with.</param>
    public FaultPlan FailAlways(FakeOperation operation, int errno) => FailFrom(operation, 1, errno);

    /// <summary>The faults that fired so far, for a coverage report (a snapshot).</summary>
    public IReadOnlySet<FaultSite> Hits
    {
        get { lock (_hits) { return new HashSet<FaultSite>(_hits); } }
    }

    /// <summary>How many times <paramref name="operation"/> was called so far.</summary>
    public int Calls(FakeOperation operation)
    {
        lock (_hits)
        {
            return _calls.GetValueOrDefault(operation);
        }
    }

    /// <summary>Counts the call and returns the errno it fails with, if it does.</summary>
    internal int? Draw(FakeOperation operation)
    {
        lock (_hits)
        {
            return DrawLocked(operation);
        }
    }

    private int? DrawLocked(FakeOperation operation)
    {
        var call = _calls[operation] = _calls.GetValueOrDefault(operation) + 1;
        int? errno = null;
        foreach (var fault in _scripted)
        {
            if (fault.Operation == operation && (fault.Last < 0 ? call >= fault.First : call == fault.First))
            {
                errno = fault.Errno;
                break;
            }
        }

        if (errno is null && _random is not null && _seededOperations.Contains(operation))
        {
            // Both draws happen on every call so one fault does not shift the sequence of the others.
            var fails = _random.NextDouble() < _probability;
            var chosen = _errors[_random.Next(_errors.Count)];
            errno = fails ? chosen : null;
        }

        if (errno is { } hit)
        {
            _hits.Add(new FaultSite(operation, hit));
        }

        return errno;
    }

    private sealed record ScriptedFault(FakeOperation Operation, int First, int Last, int Errno);
}
