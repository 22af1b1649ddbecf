using ProcHex.Backends.Linux.Simulation.Kernel;
using Sys = ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux.Simulation.Tests;

// The fake kernel's status helpers, not the adapter's WaitStatus of the enclosing namespace.
using WaitStatus = ProcHex.Backends.Linux.Simulation.Kernel.WaitStatus;

/// <summary>Programs and helpers for driving the fake kernel the way a tracer would.</summary>
internal static class FakeVictims
{
    public const int Options = Sys.PTRACE_O_TRACECLONE | Sys.PTRACE_O_TRACEFORK | Sys.PTRACE_O_TRACEVFORK
        | Sys.PTRACE_O_TRACEVFORKDONE | Sys.PTRACE_O_TRACEEXEC | Sys.PTRACE_O_TRACESYSGOOD;

    /// <summary>A leader that starts one worker, then both spin forever.</summary>
    public static FakeImage TwoSpinners() => new FakeImage("spin2")
        .Function("main", new SpawnThread("worker"), new Compute(1), new Jump(1))
        .Function("worker", new Compute(1), new Jump(0));

    public static FakeImage Spinner() => new FakeImage("spin").Function("main", new Compute(1), new Jump(0));

    /// <summary>Starts <paramref name="image"/>, lets it reach <paramref name="threads"/> threads, seizes them all.</summary>
    public static (FakeLinuxKernel Kernel, int[] Tids) Seized(FakeImage image, int threads = 2, int seed = 1, int options = Options)
    {
        var k = new FakeLinuxKernel(seed);
        var pid = k.Spawn(image);
        Assert.True(k.RunUntil(() => k.TaskIds(pid).Count == threads));
        var tids = k.TaskIds(pid).ToArray();
        foreach (var tid in tids)
        {
            Assert.Equal(0, k.Ptrace(Sys.PTRACE_SEIZE, tid, 0, options));
        }

        return (k, tids);
    }

    public static int Wait(this FakeLinuxKernel k, int tid)
    {
        var (result, status, errno) = k.WaitPid(tid, Sys.__WALL);
        Assert.Equal((tid, 0), (result, errno));
        return status;
    }

    public static string WaitFor(this FakeLinuxKernel k, int tid) => Describe(k.Wait(tid));

    public static void Cont(this FakeLinuxKernel k, int tid, int signal = 0) => Assert.Equal(0, k.Ptrace(Sys.PTRACE_CONT, tid, 0, signal));

    public static void Listen(this FakeLinuxKernel k, int tid) => Assert.Equal(0, k.Ptrace(Sys.PTRACE_LISTEN, tid, 0, 0));

    public static void Interrupt(this FakeLinuxKernel k, int tid) => Assert.Equal(0, k.Ptrace(Sys.PTRACE_INTERRUPT, tid, 0, 0));

    /// <summary>Stops the group with SIGSTOP sent to <paramref name="tids"/>[0] and collects every thread's group-stop.</summary>
    public static void GroupStop(this FakeLinuxKernel k, int[] tids)
    {
        Assert.Equal(0, k.Tgkill(tids[0], tids[0], Sys.SIGSTOP));
        Assert.Equal("signal 19", k.WaitFor(tids[0]));
        k.Cont(tids[0], Sys.SIGSTOP);
        foreach (var tid in tids)
        {
            Assert.Equal("group-stop 19", k.WaitFor(tid));
        }
    }

    /// <summary>A wait status in words: "group-stop 19", "trap-stop", "event 3", "signal 18", "syscall", "exited 0", "killed 9".</summary>
    public static string Describe(int status)
    {
        if (!WaitStatus.IsStopped(status))
        {
            return WaitStatus.IsExited(status) ? $"exited {WaitStatus.ExitCode(status)}" : $"killed {WaitStatus.TermSignal(status)}";
        }

        var signal = WaitStatus.StopSignal(status);
        return WaitStatus.Event(status) switch
        {
            Sys.PTRACE_EVENT_STOP when signal == Sys.SIGTRAP => "trap-stop",
            Sys.PTRACE_EVENT_STOP => $"group-stop {signal}",
            0 when signal == (Sys.SIGTRAP | 0x80) => "syscall",
            0 => $"signal {signal}",
            var e => $"event {e}",
        };
    }
}
