using System.Globalization;
using ProcHex.Backends.Fake;

namespace ProcHex.Simulation;

/// <summary>What the client side believes about one handle it was given: the model the invariants compare with.</summary>
public sealed class HandleModel
{
    internal HandleModel(ProcessHandle handle, int id)
    {
        Handle = handle;
        Id = id;
    }

    public ProcessHandle Handle { get; }

    public int Id { get; }

    /// <summary>References the client holds (acquired minus released, over every actor).</summary>
    public int References { get; set; }

    /// <summary>The trace clock when the handle was first seen destroyed.</summary>
    public long? DestroyedAt { get; set; }

    /// <summary>Exited/Lost notifications taken for this handle.</summary>
    public int DeathNotifications { get; set; }

    public string Name => string.Create(CultureInfo.InvariantCulture, $"h{Id}");
}

/// <summary>
/// One seed: a fake kernel with the catalogue programs, a session over it on simulated time, a few client actors
/// drawing operations from the seed, outside signals, optional seeded faults, and the model the invariants use.
/// Everything runs on the <see cref="DeterministicScheduler"/>'s thread, so the seed fixes the whole run.
/// </summary>
public sealed partial class SimulationRun
{
    private static readonly string[] s_breakpointSpecs =
    [
        "a.out`work", "work", "a.out`main", "libprochex-test.so`libwork", "libwork", "a.out`nosuch", "nosuch`work",
    ];

    private readonly Dictionary<ProcessHandle, HandleModel> _models = new(ReferenceEqualityComparer.Instance);
    private readonly List<HandleModel> _modelList = [];
    private readonly List<int?> _inflightAcquires = [];
    private readonly List<ClientBreakpoint> _breakpoints = [];
    private readonly HashSet<int> _createdPids = [];
    private readonly HashSet<int> _lostPids = [];
    private long _clock;

    public SimulationRun(int seed, SimulationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Seed = seed;
        Options = options;
        Random = new Random(seed);
        Kernel = new FakeKernel();
        Programs = new FakePrograms().RegisterWith(Kernel);
        Time = new SimulatedTime();
        Trace = new Trace(Kernel);
        if (options.Faults)
        {
            Kernel.Faults = FaultPlan.Seeded(unchecked((seed * 7919) + 17), options.FaultProbability, null, Enum.GetValues<FakeOperation>());
        }

        var sessionOptions = new ProcHexOptions
        {
            LruLimit = Random.Next(0, 4),
            DefaultRendezvous = (Rendezvous)Random.Next(4),
            TimeProvider = Time,
        };
        Session = new ProcHexSession(new FakeTracer(Kernel), sessionOptions);
        Session.LibraryListChanged = OnLibraryListChanged;
        Session.PendingBreakpointChanged = OnPendingBreakpointChanged;
        Trace.Add(string.Create(CultureInfo.InvariantCulture, $"seed {seed}: lru limit {sessionOptions.LruLimit}, default rendezvous {sessionOptions.DefaultRendezvous}, faults {(options.Faults ? "on" : "off")}"));
    }

    public int Seed { get; }

    public SimulationOptions Options { get; }

    public Random Random { get; }

    public FakeKernel Kernel { get; }

    public FakePrograms Programs { get; }

    public SimulatedTime Time { get; }

    public Trace Trace { get; }

    public ProcHexSession Session { get; }

    /// <summary>Teardown has begun: handles leave the table while the client still counts them.</summary>
    public bool TearingDown { get; private set; }

    /// <summary>Every handle the client was ever given.</summary>
    public IReadOnlyList<HandleModel> Models => _modelList;

    /// <summary>Pids of victims the session created.</summary>
    public IReadOnlySet<int> CreatedPids => _createdPids;

    /// <summary>Pids of victims whose control the session lost (recorded when the loss is notified or seen).</summary>
    public IReadOnlySet<int> LostPids => _lostPids;

    /// <summary>The model of <paramref name="handle"/>, made on first sight.</summary>
    public HandleModel ModelOf(ProcessHandle handle)
    {
        if (!_models.TryGetValue(handle, out var model))
        {
            model = new HandleModel(handle, _modelList.Count + 1);
            _models.Add(handle, model);
            _modelList.Add(model);
        }

        return model;
    }

    /// <summary>How many acquisitions in flight could still add a reference to a victim of <paramref name="pid"/>.</summary>
    public int InflightAcquires(int pid) => _inflightAcquires.Count(p => p is null || p == pid);

    /// <summary>Checks the step invariants now; throws <see cref="InvariantViolationException"/> when one fails.</summary>
    public void CheckNow()
    {
        NoteDestroyed();
        if (Invariants.CheckStep(this) is { } violation)
        {
            throw new InvariantViolationException(violation);
        }
    }

    /// <summary>The whole seed: the workload, the settle phase, teardown. Runs on the scheduler.</summary>
    public async Task RunAsync()
    {
        SpawnInitialProcesses();
        var actors = new List<Task>();
        for (var actor = 1; actor <= Options.Actors; actor++)
        {
            actors.Add(ActorAsync(actor));
        }

        foreach (var actor in actors)
        {
            await actor;
        }

        Trace.Add("workload done");
        if (Options.BeforeTeardown is { } hook)
        {
            await hook(this);
            CheckNow();
        }

        await Task.Delay(TimeSpan.FromMilliseconds(20), Time);
        await CheckDeathsNotifiedOnceAsync();

        Trace.Add("teardown");
        TearingDown = true;
        await Session.DisposeAsync();
        NoteDestroyed();
        Trace.Add("teardown done");
    }

    private void SpawnInitialProcesses()
    {
        var count = Random.Next(1, 4);
        for (var i = 0; i < count; i++)
        {
            SpawnExternal("setup");
        }
    }

    private async Task ActorAsync(int actor)
    {
        for (var i = 0; i < Options.OperationsPerActor; i++)
        {
            await OperationAsync(actor);
            CheckNow();
        }
    }

    /// <summary>S19: every controlled handle still held whose victim died or was lost has been notified exactly once.</summary>
    private async Task CheckDeathsNotifiedOnceAsync()
    {
        foreach (var model in _modelList.ToList())
        {
            var victim = model.Handle.Victim;
            if (victim.Registered && victim.ControlLoop is { } loop && model.Handle.State is VictimState.Undead or VictimState.Lost)
            {
                await loop;
            }
        }

        var started = ++_clock;
        while (Session.TryTakeNotification(out var notification))
        {
            OnNotification("final", notification, started);
        }

        foreach (var model in _modelList)
        {
            var victim = model.Handle.Victim;
            if (victim.Registered && victim.ControlLoop is not null
                && model.Handle.State is VictimState.Undead or VictimState.Lost
                && model.DeathNotifications != 1)
            {
                throw new InvariantViolationException(
                    $"{model.Name} (pid {model.Handle.Pid}) is {model.Handle.State} but was notified {model.DeathNotifications} times");
            }
        }
    }

    /// <summary>Notes the handles that are destroyed now, for the "never notified after destroy" rule.</summary>
    private void NoteDestroyed()
    {
        foreach (var model in _modelList)
        {
            if (model.Handle.Victim.LostReason is not null)
            {
                _lostPids.Add(model.Handle.Pid);
            }

            if (model.DestroyedAt is null && model.Handle.State == VictimState.Released)
            {
                model.DestroyedAt = ++_clock;
            }
        }
    }

    /// <summary>A create or grab that failed because control was lost before the rendezvous (S2).</summary>
    private void NoteLostDuringSetUp(Exception ex)
    {
        const string Prefix = "failed to control pid ";
        if (ex.Message.StartsWith(Prefix, StringComparison.Ordinal) && ex.Message.Contains("set-id or unobservable", StringComparison.Ordinal)
            && int.TryParse(ex.Message.AsSpan(Prefix.Length, ex.Message.IndexOf(':', StringComparison.Ordinal) - Prefix.Length), NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid))
        {
            _lostPids.Add(pid);
        }
    }

    private void OnNotification(string who, VictimNotification notification, long waitStarted)
    {
        var model = ModelOf(notification.Handle);
        Trace.Add($"{who} notified: {model.Name} pid {notification.Pid} {notification.Kind} {notification.Exit?.ToString() ?? string.Empty} {notification.Message ?? string.Empty}".TrimEnd());
        if (model.DestroyedAt is { } destroyed && destroyed < waitStarted)
        {
            throw new InvariantViolationException($"{model.Name} (pid {notification.Pid}) was notified ({notification.Kind}) after it was destroyed");
        }

        switch (notification.Kind)
        {
            case NotificationKind.Exited:
            case NotificationKind.Lost:
                if (++model.DeathNotifications > 1)
                {
                    throw new InvariantViolationException($"{model.Name} (pid {notification.Pid}) was notified of its end {model.DeathNotifications} times");
                }

                var expected = notification.Kind == NotificationKind.Exited ? VictimState.Undead : VictimState.Lost;
                if (notification.Handle.State != expected && notification.Handle.State != VictimState.Released)
                {
                    throw new InvariantViolationException($"{model.Name} (pid {notification.Pid}) notified {notification.Kind} while {notification.Handle.State}");
                }

                if (notification.Kind == NotificationKind.Exited && notification.Exit is null)
                {
                    throw new InvariantViolationException($"{model.Name} (pid {notification.Pid}) notified Exited without an exit status");
                }

                break;
        }
    }

    private void OnLibraryListChanged(LibraryListChange change)
    {
        var model = ModelOf(change.Handle);
        Trace.Add($"library list of {model.Name}: {change.Event} +{change.Added.Count} -{change.Removed.Count}");
        if (Random.Next(6) == 0)
        {
            throw new InvalidOperationException("probe creation failed (simulated)");
        }
    }

    private string SpawnExternal(string who)
    {
        var (image, arguments) = PickProgram(external: true);
        var pid = Kernel.Spawn(image, [.. arguments]);
        var text = string.Create(CultureInfo.InvariantCulture, $"{who} spawn {image.Name} {string.Join(' ', arguments)} -> pid {pid}");
        Trace.Add(text);
        return text;
    }

    private (FakeImage Image, string[] Arguments) PickProgram(bool external)
    {
        string N(int max) => Random.Next(1, max).ToString(CultureInfo.InvariantCulture);
        return Random.Next(external ? 6 : 10) switch
        {
            0 => (Programs.Sleeper, []),
            1 => (Programs.Loop, [N(external ? 400 : 30), N(5)]),
            2 => (Programs.Threads, [N(external ? 200 : 40)]),
            3 => (Programs.Fork, [N(external ? 100 : 10)]),
            4 => (Programs.Dlopen, [N(external ? 100 : 10)]),
            5 => (Programs.Vfork, [N(external ? 100 : 10)]),
            6 => (Programs.Exec, [N(10)]),
            7 => (Programs.SelfStop, []),
            8 => (Programs.Crash, []),
            _ => (Programs.Loop, [N(10)]),
        };
    }
}
