using ProcHex.Ports;
using ProcHex.Scenarios;
using ProcHex.Backends.FreeBSD.Tests.FakeKernel;
using static Interop;

namespace ProcHex.Backends.FreeBSD.Tests.Scenarios;

/// <summary>
/// The scenario suite's view of the FreeBSD adapter. Off FreeBSD it runs over the kernel fake, with the real
/// compiled fixtures mapped into fake processes (see <see cref="FakeCatalogue"/>). On FreeBSD it runs over the
/// real kernel (<see cref="LibcFreeBsdKernel"/>) and real processes, observed as ps(1) and procfs see them.
/// </summary>
public sealed class FreeBsdScenarioBackend : IScenarioBackend
{
    private readonly IFreeBsdKernel _kernel;
    private readonly FakeFreeBsdKernel? _fake;
    private readonly RealProcesses? _real;
    private readonly List<int> _spawned = [];

    public FreeBsdScenarioBackend(FakeAttach attach = FakeAttach.Classic)
    {
        if (OperatingSystem.IsFreeBSD())
        {
            _kernel = new LibcFreeBsdKernel();
            _real = new RealProcesses(_kernel);
        }
        else
        {
            _kernel = _fake = FakeCatalogue.NewKernel(attach);
        }

        Tracer = new FreeBsdTracer(_kernel);
    }

    public string Name => "FreeBSD";

    /// <summary>kern_sig.c tdsendsignal: a traced, stopped process keeps a SIGKILL queued until it is resumed.</summary>
    public bool DefersKillOfStoppedVictims => true;

    /// <summary>The FreeBSD backend refuses create options as Unsupported (issue 22 item 1).</summary>
    public bool SupportsCreateOptions => false;

    public IProcessTracer Tracer { get; }

    public Task RunAsync(Func<Task> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        return body().WaitAsync(TimeSpan.FromSeconds(60));
    }

    public ScenarioProgram Program(ProgramKind kind)
    {
        var path = FixturePrograms.PathOf(FakeCatalogue.FileName(kind));
        return new ScenarioProgram(path, [path]);
    }

    public int Spawn(ProgramKind kind, params string[] arguments)
    {
        var program = Program(kind);
        var pid = _fake is not null
            ? _fake.StartUntraced(program.File, argv: program.WithArguments(arguments))
            : RealProcesses.StartOrphan(program.File, arguments);
        _spawned.Add(pid);
        return pid;
    }

    public void SendSignal(int pid, ExternalSignal signal)
    {
        var number = signal switch
        {
            ExternalSignal.Stop => Signals.SIGSTOP,
            ExternalSignal.Continue => Signals.SIGCONT,
            _ => Signals.SIGKILL,
        };
        if (_fake is not null)
        {
            _fake.SendSignal(pid, number);
        }
        else
        {
            _ = _kernel.Kill(pid, number, out _);
        }
    }

    public ProcessObservation Observe(int pid)
    {
        if (_real is not null)
        {
            return RealProcesses.Observe(pid);
        }

        return _fake!.Observe(pid) is not { } seen
            ? ProcessObservation.Gone
            : new ProcessObservation(
                true, seen.State == FakeState.Zombie, seen.State is FakeState.JobStopped or FakeState.TraceStopped, seen.Traced);
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

            await Task.Delay(5);
        }
    }

    public bool TextIsOriginal(int pid) => _fake?.TextIsOriginal(pid) ?? _real!.TextIsOriginal(pid);

    public long ReadCallCounter(ITracedProcess process)
    {
        ArgumentNullException.ThrowIfNull(process);
        if (!process.Symbols.TryLookup("a.out", "calls", out var address))
        {
            throw new TracerException($"pid {process.Pid}: a.out`calls not found");
        }

        var buffer = new byte[8];
        return process.ReadMemory(address, buffer) == 8 ? BitConverter.ToInt64(buffer) : throw new TracerException("cannot read calls");
    }

    /// <summary>Kills what the scenario spawned; over the fake, fails the scenario if a victim suffered (an int3 run past, an unguarded step).</summary>
    public ValueTask DisposeAsync()
    {
        foreach (var pid in _spawned)
        {
            SendSignal(pid, ExternalSignal.Kill);
        }

        if (_fake is { Violations.Count: > 0 } fake)
        {
            throw new InvalidOperationException("the kernel fake saw victims harmed: " + string.Join("; ", fake.Violations));
        }

        return ValueTask.CompletedTask;
    }
}
