namespace ProcHex.Backends.Linux.Simulation.Tests;

/// <summary>
/// What a differential scenario may do to a two-thread victim, "leader" and "worker": the same calls on the real
/// kernel and on the fake, each blocking wait naming the thread whose report it expects.
/// </summary>
internal interface IScenarioKernel
{
    int Leader { get; }

    int Worker { get; }

    int Ptrace(int request, int tid, int data);

    int Kill(int signal);

    int Tgkill(int tid, int signal);

    /// <summary>Blocking waitpid(tid, __WALL): the wait status.</summary>
    int Wait(int tid);

    /// <summary>Lets the victim run a little before its state is read.</summary>
    void Settle();

    char? State(int tid);
}
