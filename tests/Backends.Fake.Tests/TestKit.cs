using ProcHex.PortContract;
using ProcHex.Ports;

namespace ProcHex.Backends.Fake.Tests;

/// <summary>Drives a kernel by hand: no scheduler, the test steps the victims itself.</summary>
internal sealed class TestKit
{
    public TestKit(int firstPid = 100)
    {
        Kernel = new FakeKernel(firstPid);
        Programs = new FakePrograms().RegisterWith(Kernel);
        Tracer = new FakeTracer(Kernel);
    }

    public FakeKernel Kernel { get; }

    public FakePrograms Programs { get; }

    public FakeTracer Tracer { get; }

    public FakeProcess Create(FakeImage image, params string[] arguments) =>
        (FakeProcess)Tracer.CreateAsync(new ProcessStartRequest(image.Path, [image.Path, .. arguments]), default).AsTask().GetAwaiter().GetResult();

    public FakeProcess Grab(int pid, GrabAccess access = GrabAccess.Control) =>
        (FakeProcess)Tracer.GrabAsync(pid, access, default).AsTask().GetAwaiter().GetResult();

    /// <summary>Created, under control, running.</summary>
    public FakeProcess Start(FakeImage image, params string[] arguments)
    {
        var process = Create(image, arguments);
        process.BeginControl();
        process.Resume();
        return process;
    }

    /// <summary>Steps the kernel until the process reports something.</summary>
    public StopEvent NextStop(ITracedProcess process, int maxSteps = 10_000)
    {
        var wait = process.WaitForStopAsync(CancellationToken.None);
        for (var steps = 0; !wait.IsCompleted; steps++)
        {
            if (steps == maxSteps || !Kernel.Step())
            {
                throw new InvalidOperationException($"no stop for pid {process.Pid} after {steps} steps:\n{Kernel.Describe()}");
            }
        }

        return wait.AsTask().GetAwaiter().GetResult();
    }

    /// <summary>
    /// Answers every stop of a running process with the shared <see cref="PortDriver"/>, stepping the kernel by hand, until the
    /// victim exits; returns the events seen, the exit last.
    /// </summary>
    public List<StopEvent> RunToExit(ITracedProcess process, params BreakpointPatch[] planted)
    {
        var driver = new PortDriver(process) { MaxStops = 1000, KeepTrapsAcrossFork = true, Wait = (p, _) => ValueTask.FromResult(NextStop(p)) };
        foreach (var patch in planted)
        {
            driver.Adopt(patch);
        }

        var end = driver.RunToEnd(running: true).GetAwaiter().GetResult();
        Assert.NotEqual(StopKind.Stopped, end.Kind);
        return driver.Events;
    }

    public static ulong Address(ITracedProcess process, string symbol, string? objectName = null) =>
        process.Symbols.TryLookup(objectName, symbol, out var address) ? address : throw new KeyNotFoundException(symbol);

    public static long ReadCalls(ITracedProcess process)
    {
        Assert.True(process.Symbols.TryLookup("a.out", "calls", out var address));
        Span<byte> bytes = stackalloc byte[8];
        Assert.Equal(8, process.ReadMemory(address, bytes));
        return BitConverter.ToInt64(bytes);
    }
}
