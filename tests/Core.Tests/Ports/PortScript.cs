using NSubstitute;
using ProcHex.Ports;

namespace ProcHex.Core.Tests.Ports;

/// <summary>
/// An NSubstitute <see cref="ITracedProcess"/> whose stops are pushed by the test. Waits block until a stop is
/// pushed; RequestStop pushes Interrupted, as the port contract says. Breakpoint patches remember a fake byte.
/// </summary>
internal sealed class PortScript
{
    public const ulong MainAddress = 0x401000;
    public const ulong WorkAddress = 0x401100;
    public const ulong RtldAddress = 0x7f0000001000;

    private readonly Lock _gate = new();
    private readonly Queue<Task<StopEvent>> _stops = new();
    private TaskCompletionSource<StopEvent>? _pending;

    public PortScript(int pid, GrabAccess access = GrabAccess.Control, bool withMain = true)
    {
        Pid = pid;
        Symbols = Substitute.For<ISymbolTable>();
        Symbols.Objects.Returns([new LoadedObject("/bin/victim", 0x400000)]);
        Symbols.TryLookup(Arg.Any<string?>(), Arg.Any<string>(), out Arg.Any<ulong>()).Returns(ci =>
        {
            var (obj, sym) = (ci.ArgAt<string?>(0), ci.ArgAt<string>(1));
            ulong? address = (obj, sym) switch
            {
                ("a.out" or null, "main") when withMain => MainAddress,
                ("a.out" or null, "work") => WorkAddress,
                _ => null,
            };
            ci[2] = address ?? 0UL;
            return address.HasValue;
        });

        Process = Substitute.For<ITracedProcess>();
        Process.Pid.Returns(pid);
        Process.Access.Returns(access);
        Process.Symbols.Returns(Symbols);
        Process.WaitForStopAsync(Arg.Any<CancellationToken>()).Returns(_ => NextStop());
        Process.When(p => p.RequestStop()).Do(_ => Push(StopEvent.Stopped(StopReason.Interrupted, pid)));
        Process.PlantBreakpoint(Arg.Any<ulong>()).Returns(ci => new BreakpointPatch(ci.Arg<ulong>(), 0x55, 1));
    }

    public int Pid { get; }

    public ITracedProcess Process { get; }

    public ISymbolTable Symbols { get; }

    /// <summary>How many waits the control loop has started; lets a test know the loop is parked in a wait.</summary>
    public int Waits { get; private set; }

    public void Push(StopEvent stop) => Deliver(Task.FromResult(stop));

    /// <summary>Makes the next wait fail with <paramref name="error"/>, as a backend whose wait call failed would.</summary>
    public void FailWait(TracerException error) => Deliver(Task.FromException<StopEvent>(error));

    private void Deliver(Task<StopEvent> outcome)
    {
        TaskCompletionSource<StopEvent>? waiter;
        lock (_gate)
        {
            waiter = _pending;
            _pending = null;
            if (waiter is null)
            {
                _stops.Enqueue(outcome);
            }
        }

        if (waiter is not null)
        {
            _ = outcome.IsCompletedSuccessfully ? waiter.TrySetResult(outcome.Result) : waiter.TrySetException(outcome.Exception!.InnerExceptions);
        }
    }

    public void HitBreakpoint(ulong address, int? tid = null) => Push(StopEvent.Stopped(StopReason.Breakpoint, tid ?? Pid, address));

    public void Exit(int code) => Push(StopEvent.Exited(Pid, ExitStatus.FromCode(code)));

    /// <summary>Waits (really) until the control loop has asked for <paramref name="count"/> stops in all.</summary>
    public async Task WaitForWaitsAsync(int count)
    {
        for (var i = 0; i < 2000 && Waits < count; i++)
        {
            await Task.Delay(5);
        }

        Assert.True(Waits >= count, $"the control loop made {Waits} waits, expected {count}");
    }

    private ValueTask<StopEvent> NextStop()
    {
        lock (_gate)
        {
            Waits++;
            if (_stops.TryDequeue(out var outcome))
            {
                return new ValueTask<StopEvent>(outcome);
            }

            _pending = new TaskCompletionSource<StopEvent>(TaskCreationOptions.RunContinuationsAsynchronously);
            return new ValueTask<StopEvent>(_pending.Task);
        }
    }
}

/// <summary>A substitute tracer handing out <see cref="PortScript"/> processes.</summary>
internal sealed class TracerScript
{
    public TracerScript()
    {
        Tracer = Substitute.For<IProcessTracer>();
        Tracer.Name.Returns("script");
        Tracer.CreateAsync(Arg.Any<ProcessStartRequest>(), Arg.Any<CancellationToken>())
            .Returns(_ => CreateError is { } error
                ? ValueTask.FromException<ITracedProcess>(error)
                : ValueTask.FromResult(Add(NextPid++, GrabAccess.Control).Process));
        Tracer.GrabAsync(Arg.Any<int>(), Arg.Any<GrabAccess>(), Arg.Any<CancellationToken>())
            .Returns(ci => GrabError is { } error
                ? ValueTask.FromException<ITracedProcess>(error)
                : ValueTask.FromResult(Add(ci.ArgAt<int>(0), ci.ArgAt<GrabAccess>(1)).Process));
    }

    public IProcessTracer Tracer { get; }

    public int NextPid { get; set; } = 100;

    /// <summary>Builds each new process; tests replace it to add an rtld agent or drop main.</summary>
    public Func<int, GrabAccess, PortScript> NewProcess { get; set; } = (pid, access) => new PortScript(pid, access);

    public Exception? CreateError { get; set; }

    public Exception? GrabError { get; set; }

    public List<PortScript> Processes { get; } = [];

    public PortScript Last => Processes[^1];

    public ProcHexSession Session(int lruLimit = 8) => new(Tracer, new ProcHexOptions { LruLimit = lruLimit });

    private PortScript Add(int pid, GrabAccess access)
    {
        var script = NewProcess(pid, access);
        Processes.Add(script);
        return script;
    }
}
