namespace ProcHex.Backends.Fake;

/// <summary>
/// A single-threaded pump for simulations: the body and every continuation posted to this context run on the
/// calling thread, one at a time, in an order fixed by the seed; whenever nothing is posted the fake kernel
/// advances one step (and simulated time, if any, moves). Same seed, same body, same kernel: the same run.
/// </summary>
/// <remarks>
/// Determinism holds as long as the body's code stays on this context: awaits without ConfigureAwait(false),
/// no Task.Run, no real timers (use <see cref="SimulatedTime"/>). Work that escapes to other threads makes
/// the pump see "nothing to do" too early and report the simulation stuck.
/// </remarks>
public sealed class DeterministicScheduler : SynchronizationContext
{
    private readonly object _gate = new();
    private readonly List<(SendOrPostCallback Callback, object? State)> _posted = [];
    private readonly DeterministicSchedulerOptions _options;
    private readonly Random _random;
    private readonly int _threadId = Environment.CurrentManagedThreadId;
    private int _foreignPosts;

    private DeterministicScheduler(DeterministicSchedulerOptions options)
    {
        _options = options;
        _random = new Random(options.Seed);
    }

    /// <summary>Kernel steps taken so far.</summary>
    public int KernelSteps { get; private set; }

    /// <summary>Posted continuations run so far.</summary>
    public int Continuations { get; private set; }

    /// <summary>Runs <paramref name="body"/> to completion; throws what it throws, or <see cref="SimulationStuckException"/>.</summary>
    public static void Run(Func<Task> body, FakeKernel kernel, int seed, int maxSteps = 100_000) =>
        Run(body, kernel, new DeterministicSchedulerOptions { Seed = seed, MaxSteps = maxSteps });

    /// <summary>Runs <paramref name="body"/> to completion and returns its result; throws what it throws, or <see cref="SimulationStuckException"/>.</summary>
    /// <param name="body">The client code under test.</param>
    /// <param name="kernel">The fake kernel it drives.</param>
    /// <param name="seed">Every scheduling choice is drawn from it.</param>
    /// <param name="maxSteps">Kernel steps before the run counts as stuck.</param>
    public static T Run<T>(Func<Task<T>> body, FakeKernel kernel, int seed, int maxSteps = 100_000) =>
        Run(body, kernel, new DeterministicSchedulerOptions { Seed = seed, MaxSteps = maxSteps });

    /// <summary>Runs <paramref name="body"/> to completion with <paramref name="options"/> and returns its result.</summary>
    /// <param name="body">The client code under test.</param>
    /// <param name="kernel">The fake kernel it drives.</param>
    /// <param name="options">Seed, limits, clock and interleaving.</param>
    public static T Run<T>(Func<Task<T>> body, FakeKernel kernel, DeterministicSchedulerOptions options)
    {
        ArgumentNullException.ThrowIfNull(body);
        var result = default(T)!;
        Run(async () => { result = await body(); }, kernel, options);
        return result;
    }

    /// <summary>Runs <paramref name="body"/> to completion with <paramref name="options"/>; throws what it throws, or <see cref="SimulationStuckException"/>.</summary>
    /// <param name="body">The client code under test.</param>
    /// <param name="kernel">The fake kernel it drives.</param>
    /// <param name="options">Seed, limits, clock and interleaving.</param>
    public static void Run(Func<Task> body, FakeKernel kernel, DeterministicSchedulerOptions options)
    {
        ArgumentNullException.ThrowIfNull(body);
        ArgumentNullException.ThrowIfNull(kernel);
        ArgumentNullException.ThrowIfNull(options);
        var scheduler = new DeterministicScheduler(options);
        var previous = Current;
        SetSynchronizationContext(scheduler);
        try
        {
            Task task;
            try
            {
                task = body();
            }
            catch (Exception e)
            {
                task = Task.FromException(e);
            }

            scheduler.Pump(task, kernel);
            task.GetAwaiter().GetResult();
        }
        finally
        {
            SetSynchronizationContext(previous);
        }
    }

    /// <summary>Continuations that reached the pump from another thread (a thread-pool hop): each is a determinism risk.</summary>
    public int ForeignPosts => Volatile.Read(ref _foreignPosts);

    /// <summary>Queues <paramref name="d"/> to run when the seed picks it, on the pump thread.</summary>
    /// <param name="d">The continuation.</param>
    /// <param name="state">Its argument.</param>
    public override void Post(SendOrPostCallback d, object? state)
    {
        ArgumentNullException.ThrowIfNull(d);
        if (Environment.CurrentManagedThreadId != _threadId)
        {
            Interlocked.Increment(ref _foreignPosts);
        }

        lock (_gate)
        {
            _posted.Add((d, state));
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Runs <paramref name="d"/> at once on the calling thread.</summary>
    /// <param name="d">The callback.</param>
    /// <param name="state">Its argument.</param>
    public override void Send(SendOrPostCallback d, object? state)
    {
        ArgumentNullException.ThrowIfNull(d);
        if (Environment.CurrentManagedThreadId != _threadId)
        {
            throw new NotSupportedException("the deterministic scheduler runs work on its own thread only");
        }

        d(state);
    }

    /// <summary>The scheduler itself: one pump serves every copy.</summary>
    public override SynchronizationContext CreateCopy() => this;

    private void Pump(Task body, FakeKernel kernel)
    {
        while (true)
        {
            if (_options.FailOnForeignPost && ForeignPosts > 0)
            {
                throw new InvalidOperationException(
                    "a continuation reached the deterministic scheduler from another thread: this run cannot be replayed exactly. "
                    + "Await tasks directly instead of through Task.WaitAsync, WhenAll or WhenAny over asynchronously completed sources.");
            }

            var posted = HasPosted();
            if (posted && !(StepsAheadOfContinuations(body, kernel) && StepKernel(body, kernel)))
            {
                RunOnePosted(kernel);
                continue;
            }

            if (posted)
            {
                continue;
            }

            if (body.IsCompleted)
            {
                return;
            }

            if (StepKernel(body, kernel) || _options.Time?.FireNextTimer() == true || AwaitForeignPost())
            {
                continue;
            }

            throw new SimulationStuckException(
                $"simulation stuck after {KernelSteps} kernel steps and {Continuations} continuations ({ForeignPosts} from other threads): nothing is posted, no victim can run, no timer is pending",
                kernel.Describe());
        }
    }

    /// <summary>Lets a victim run on while the core has work queued, the way real victims race their tracer.</summary>
    private bool StepsAheadOfContinuations(Task body, FakeKernel kernel) =>
        _options.KernelStepProbability > 0 && !body.IsCompleted && kernel.CanProgress && _random.NextDouble() < _options.KernelStepProbability;

    private bool StepKernel(Task body, FakeKernel kernel)
    {
        if (body.IsCompleted)
        {
            return false;
        }

        if (KernelSteps >= _options.MaxSteps)
        {
            throw new SimulationStuckException($"simulation ran out of its {_options.MaxSteps} kernel steps", kernel.Describe());
        }

        var stepped = _options.RandomThreadChoice ? kernel.Step(_random) : kernel.Step();
        if (stepped)
        {
            KernelSteps++;
            _options.Time?.Advance(_options.StepDuration);
            _options.AfterKernelStep?.Invoke(kernel);
        }

        return stepped;
    }

    /// <summary>
    /// A continuation may still be on its way through the thread pool (Task.WaitAsync, WhenAll and friends over
    /// sources that run continuations asynchronously); give it a moment before calling the simulation stuck.
    /// </summary>
    private bool AwaitForeignPost()
    {
        lock (_gate)
        {
            if (_posted.Count == 0)
            {
                Monitor.Wait(_gate, _options.ForeignWorkGrace);
            }

            return _posted.Count > 0;
        }
    }

    private bool HasPosted()
    {
        lock (_gate)
        {
            return _posted.Count > 0;
        }
    }

    private void RunOnePosted(FakeKernel kernel)
    {
        if (Continuations >= _options.MaxContinuations)
        {
            throw new SimulationStuckException($"simulation ran out of its {_options.MaxContinuations} continuations (livelock?)", kernel.Describe());
        }

        (SendOrPostCallback Callback, object? State) next;
        lock (_gate)
        {
            var index = _options.ShuffleContinuations ? _random.Next(_posted.Count) : 0;
            next = _posted[index];
            _posted.RemoveAt(index);
        }

        Continuations++;
        next.Callback(next.State);
    }
}

/// <summary>How a <see cref="DeterministicScheduler"/> interleaves work; every choice is drawn from <see cref="Seed"/>.</summary>
public sealed record DeterministicSchedulerOptions
{
    /// <summary>The seed every scheduling choice is drawn from; the same seed replays the same run.</summary>
    public int Seed { get; init; }

    /// <summary>Kernel steps before the run counts as stuck (a victim spinning forever never gets quiet).</summary>
    public int MaxSteps { get; init; } = 100_000;

    /// <summary>Posted continuations before the run counts as stuck (a livelock in the core).</summary>
    public int MaxContinuations { get; init; } = 1_000_000;

    /// <summary>Run posted continuations in seeded order; false runs them first in, first out.</summary>
    public bool ShuffleContinuations { get; init; } = true;

    /// <summary>Pick the victim thread to step with the seed; false steps round-robin.</summary>
    public bool RandomThreadChoice { get; init; } = true;

    /// <summary>Chance of a kernel step even while continuations are posted (0: victims run only when the core is idle).</summary>
    public double KernelStepProbability { get; init; }

    /// <summary>Simulated clock: advances by <see cref="StepDuration"/> per kernel step and jumps to the next timer when idle.</summary>
    public SimulatedTime? Time { get; init; }

    /// <summary>How far the simulated clock moves per kernel step.</summary>
    public TimeSpan StepDuration { get; init; } = TimeSpan.FromMilliseconds(1);

    /// <summary>How long an idle pump waits for a continuation coming through the thread pool before it calls the run stuck.</summary>
    public TimeSpan ForeignWorkGrace { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Fail the run as soon as a continuation arrives from another thread, instead of tolerating it.</summary>
    public bool FailOnForeignPost { get; init; }

    /// <summary>Called on the pump thread, outside the kernel lock, after every kernel step: the place for invariant checks.</summary>
    public Action<FakeKernel>? AfterKernelStep { get; init; }
}

/// <summary>The simulation cannot finish: the body waits for something that will never happen.</summary>
public sealed class SimulationStuckException : Exception
{
    /// <summary>The run could not finish.</summary>
    /// <param name="message">What the body was waiting for.</param>
    /// <param name="victims">Every victim's state, for the report.</param>
    public SimulationStuckException(string message, string victims)
        : base($"{message}{Environment.NewLine}{victims}") => Victims = victims;

    /// <summary>Creates a <see cref="SimulationStuckException"/> with a generic message; prefer one that says what failed.</summary>
    public SimulationStuckException() : this("simulation stuck", string.Empty) { }

    /// <summary>Creates a <see cref="SimulationStuckException"/>: <paramref name="message"/> says what failed and what to do about it.</summary>
    public SimulationStuckException(string message) : this(message, string.Empty) { }

    /// <summary>Creates a <see cref="SimulationStuckException"/>: <paramref name="message"/> says what failed and what to do about it; <paramref name="innerException"/> is the failure behind it.</summary>
    public SimulationStuckException(string message, Exception innerException) : base(message, innerException) => Victims = string.Empty;

    /// <summary>What every victim was doing (<see cref="FakeKernel.Describe"/>).</summary>
    public string Victims { get; }
}
