using ProcHex.Ports;
using ProcHex.Scenarios;
using ProcHex.Backends.Linux.Tests.Support;

namespace ProcHex.Backends.Linux.Tests;

/// <summary>The scenario suite's view of real Linux processes: the fixtures, /proc, kill(2).</summary>
public sealed class LinuxScenarioBackend : IScenarioBackend
{
    private readonly List<int> _spawned = [];
    private readonly RecordingTracer _tracer = new(new LinuxTracer());
    private readonly HashSet<int> _stoppedByUs = [];

    public string Name => "Linux";

    public IProcessTracer Tracer => _tracer;

    public Task RunAsync(Func<Task> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        return body().WaitAsync(TimeSpan.FromSeconds(120));
    }

    public ScenarioProgram Program(ProgramKind kind)
    {
        var path = FixturePrograms.PathOf(FileName(kind));
        return new ScenarioProgram(path, [path]);
    }

    public int Spawn(ProgramKind kind, params string[] arguments)
    {
        var process = Untraced.Start(FileName(kind), arguments);
        _spawned.Add(process.Id);
        return process.Id;
    }

    public void SendSignal(int pid, ExternalSignal signal)
    {
        // A victim whose last signal from outside was SIGSTOP may legitimately be left stopped (S9 hang).
        if (signal == ExternalSignal.Stop)
        {
            _stoppedByUs.Add(pid);
        }
        else
        {
            _stoppedByUs.Remove(pid);
        }

        _ = LinuxTestBase.Kill(pid, signal switch
        {
            ExternalSignal.Stop => 19,
            ExternalSignal.Continue => 18,
            _ => 9,
        });
    }

    public ProcessObservation Observe(int pid)
    {
        var state = Support.Observe.State(pid);
        return state is null
            ? ProcessObservation.Gone
            : new ProcessObservation(true, state == 'Z', state is 'T' or 't', Support.Observe.TracerPid(pid) != 0);
    }

    public async Task<ProcessObservation> WaitUntilAsync(int pid, Func<ProcessObservation, bool> condition)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var deadline = Environment.TickCount64 + 10_000;
        while (true)
        {
            var seen = Observe(pid);
            if (condition(seen))
            {
                return seen;
            }

            if (Environment.TickCount64 > deadline)
            {
                throw new TimeoutException($"pid {pid}: condition not met; last seen {seen}");
            }

            await Task.Delay(10);
        }
    }

    public bool TextIsOriginal(int pid) => Support.Observe.TextDifferences(pid).Count == 0;

    public long ReadCallCounter(ITracedProcess process)
    {
        ArgumentNullException.ThrowIfNull(process);
        if (!process.Symbols.TryLookup("a.out", "calls", out var address))
        {
            var exe = Support.Observe.Exe(process.Pid);
            address = Support.Observe.LoadBias(process.Pid, exe) + FixturePrograms.Symbol(Path.GetFileName(exe), "calls");
        }

        var buffer = new byte[8];
        return process.ReadMemory(address, buffer) == 8 ? BitConverter.ToInt64(buffer) : throw new TracerException("cannot read calls");
    }

    /// <summary>
    /// After every scenario (its session is disposed by then), the invariants of issue 3 on every real process it
    /// touched: created victims are gone (killed and reaped), grabbed ones untraced with their text restored and
    /// running unless someone else stopped them, and this process has no zombie children.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            foreach (var (pid, created) in _tracer.Victims)
            {
                if (created)
                {
                    Assert.True(await Support.Observe.Eventually(() => Support.Observe.State(pid) is null), $"created victim {pid} outlived its session");
                }
                else
                {
                    await Support.Observe.CheckReleased(pid, _stoppedByUs.Contains(pid));
                }
            }

            Assert.True(await Support.Observe.Eventually(() => Support.Observe.ZombieChildren().Count == 0), "zombie children after the scenario");
        }
        finally
        {
            foreach (var pid in _spawned)
            {
                _ = LinuxTestBase.Kill(pid, 9);
            }
        }
    }

    private static string FileName(ProgramKind kind) => kind switch
    {
        ProgramKind.Loop => "loop",
        ProgramKind.Threads => "threads",
        ProgramKind.Sleeper => "sleeper",
        ProgramKind.Fork => "fork",
        ProgramKind.Vfork => "vfork",
        ProgramKind.Exec => "exec",
        ProgramKind.SelfStop => "selfstop",
        ProgramKind.Crash => "crash",
        ProgramKind.Dlopen => "dlopen",
        ProgramKind.Stdio => "stdio",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };
}

/// <summary>The backend-parameterized scenarios (S1–S23) on real processes.</summary>
[Trait("Backend", "Linux")]
public sealed class LinuxScenarios() : ScenarioSuite(new LinuxScenarioBackend());

/// <summary>The port contract (what the core relies on from an adapter) on real processes.</summary>
[Trait("Backend", "Linux")]
public sealed class LinuxPortContract() : ProcHex.PortContract.PortContractSuite(new LinuxScenarioBackend());
