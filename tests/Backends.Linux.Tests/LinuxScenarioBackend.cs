using System.Globalization;
using ProcHex.Backends.Linux;
using ProcHex.Ports;
using ProcHex.Scenarios;
using ProcHex.Tests.Support;

namespace ProcHex.Tests;

/// <summary>The scenario suite's view of real Linux processes: the fixtures, /proc, kill(2).</summary>
public sealed class LinuxScenarioBackend : IScenarioBackend
{
    private readonly List<int> _spawned = [];

    public string Name => "Linux";

    public IProcessTracer Tracer { get; } = new LinuxTracer();

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

    public void SendSignal(int pid, ExternalSignal signal) =>
        _ = LinuxTestBase.Kill(pid, signal switch
        {
            ExternalSignal.Stop => 19,
            ExternalSignal.Continue => 18,
            _ => 9,
        });

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

    public bool TextIsOriginal(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/maps"))
        {
            var f = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 6 || f[1][2] != 'x' || !f[5].StartsWith('/') || !File.Exists(f[5]))
            {
                continue;
            }

            var range = f[0].Split('-');
            var start = ulong.Parse(range[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            var end = ulong.Parse(range[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            var offset = long.Parse(f[2], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            var memory = Support.Observe.Memory(pid, start, (int)(end - start));
            var file = new byte[memory.Length];
            using (var stream = File.OpenRead(f[5]))
            {
                stream.Position = offset;
                var n = stream.ReadAtLeast(file, file.Length, throwOnEndOfStream: false);
                if (!memory.AsSpan(0, n).SequenceEqual(file.AsSpan(0, n)))
                {
                    return false;
                }
            }
        }

        return true;
    }

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

    public ValueTask DisposeAsync()
    {
        foreach (var pid in _spawned)
        {
            _ = LinuxTestBase.Kill(pid, 9);
        }

        return ValueTask.CompletedTask;
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
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };
}

/// <summary>The backend-parameterized scenarios (S1–S23) on real processes.</summary>
[Trait("Backend", "Linux")]
public sealed class LinuxScenarios() : ScenarioSuite(new LinuxScenarioBackend());
