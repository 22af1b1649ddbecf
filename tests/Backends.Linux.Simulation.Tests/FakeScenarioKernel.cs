using ProcHex.Backends.Linux.Simulation.Kernel;
using Sys = ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux.Simulation.Tests;

/// <summary>The fake kernel running the fake's spin2 (<see cref="FakeVictims.TwoSpinners"/>), for differential tests.</summary>
internal sealed class FakeScenarioKernel : IScenarioKernel
{
    private readonly FakeLinuxKernel _kernel;

    public FakeScenarioKernel(int seed)
    {
        var (kernel, tids) = FakeVictims.Seized(FakeVictims.TwoSpinners(), seed: seed, options: Sys.PTRACE_O_TRACECLONE);
        _kernel = kernel;
        (Leader, Worker) = (tids[0], tids[1]);
    }

    public int Leader { get; }

    public int Worker { get; }

    public IReadOnlyList<string> Log => _kernel.Log;

    public int Ptrace(int request, int tid, int data) => _kernel.Ptrace(request, tid, 0, data);

    public int Kill(int signal) => _kernel.Kill(Leader, signal);

    public int Tgkill(int tid, int signal) => _kernel.Tgkill(Leader, tid, signal);

    public int Wait(int tid) => _kernel.Wait(tid);

    public void Settle() => _kernel.Run(50);

    public char? State(int tid) => _kernel.ThreadState(tid);
}
