using ProcHex.Ports;
using ProcHex.Scenarios;

namespace ProcHex.Backends.Fake.Tests;

/// <summary>The scenario suite's view of the fake kernel: the catalogue programs, run on the deterministic scheduler.</summary>
public sealed class FakeScenarioBackend : IScenarioBackend
{
    private const int Seed = 1;
    private readonly FakeKernel _kernel = new();
    private readonly FakePrograms _programs;

    public FakeScenarioBackend()
    {
        _programs = new FakePrograms().RegisterWith(_kernel);
        Tracer = new FakeTracer(_kernel);
    }

    public string Name => "Fake";

    public IProcessTracer Tracer { get; }

    public Task RunAsync(Func<Task> body)
    {
        DeterministicScheduler.Run(body, _kernel, Seed);
        return Task.CompletedTask;
    }

    public ScenarioProgram Program(ProgramKind kind)
    {
        var image = Image(kind);
        return new ScenarioProgram(image.Path, [image.Path]);
    }

    public int Spawn(ProgramKind kind, params string[] arguments) => _kernel.Spawn(Image(kind), arguments);

    public void SendSignal(int pid, ExternalSignal signal) => _kernel.SendSignal(pid, signal switch
    {
        ExternalSignal.Stop => Signals.Stop,
        ExternalSignal.Continue => Signals.Cont,
        _ => Signals.Kill,
    });

    public ProcessObservation Observe(int pid)
    {
        var seen = _kernel.Observe(pid);
        return new ProcessObservation(seen.Exists, seen.Zombie, seen.Stopped, seen.Traced);
    }

    /// <summary>
    /// Polls between the scheduler's turns: the condition may depend on the core's state, which changes on
    /// continuations rather than kernel steps, so a kernel watch alone could miss it. A condition that never
    /// holds ends in the scheduler's step or continuation limit, never a hang.
    /// </summary>
    public async Task<ProcessObservation> WaitUntilAsync(int pid, Func<ProcessObservation, bool> condition)
    {
        ArgumentNullException.ThrowIfNull(condition);
        while (true)
        {
            var seen = Observe(pid);
            if (condition(seen))
            {
                return seen;
            }

            // Let a victim run when one can (the scheduler prefers pending continuations to kernel steps).
            if (_kernel.CanProgress)
            {
                await _kernel.WaitStepsAsync(1);
            }
            else
            {
                await Task.Yield();
            }
        }
    }

    public bool TextIsOriginal(int pid) => _kernel.TextIsOriginal(pid);

    public long ReadCallCounter(ITracedProcess process)
    {
        ArgumentNullException.ThrowIfNull(process);
        return _kernel.ReadGlobal(process.Pid, "calls");
    }

    public ValueTask DisposeAsync()
    {
        foreach (var pid in _kernel.Pids)
        {
            _kernel.Kill(pid);
        }

        return ValueTask.CompletedTask;
    }

    private FakeImage Image(ProgramKind kind) => kind switch
    {
        ProgramKind.Loop => _programs.Loop,
        ProgramKind.Threads => _programs.Threads,
        ProgramKind.Sleeper => _programs.Sleeper,
        ProgramKind.Fork => _programs.Fork,
        ProgramKind.Vfork => _programs.Vfork,
        ProgramKind.Exec => _programs.Exec,
        ProgramKind.SelfStop => _programs.SelfStop,
        ProgramKind.Crash => _programs.Crash,
        ProgramKind.Dlopen => _programs.Dlopen,
        ProgramKind.Stdio => _programs.Stdio,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };
}

/// <summary>The backend-parameterized scenarios (S1–S23) on the fake kernel.</summary>
[Trait("Backend", "Fake")]
public sealed class FakeScenarios() : ScenarioSuite(new FakeScenarioBackend());

/// <summary>The port contract (what the core relies on from an adapter) on the fake kernel.</summary>
[Trait("Backend", "Fake")]
public sealed class FakePortContract() : ProcHex.PortContract.PortContractSuite(new FakeScenarioBackend());
