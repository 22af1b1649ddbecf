namespace ProcHex.Backends.Linux.Simulation.Kernel;

/// <summary>
/// A blocking call (waitpid without WNOHANG) that would never return: nothing in the simulated world can run, or
/// it ran for the step budget without producing what the caller waits for. On a real kernel the caller would hang.
/// </summary>
public sealed class SimulationStalledException : Exception
{
    public SimulationStalledException() { }

    public SimulationStalledException(string message) : base(message) { }

    public SimulationStalledException(string message, Exception inner) : base(message, inner) { }
}
