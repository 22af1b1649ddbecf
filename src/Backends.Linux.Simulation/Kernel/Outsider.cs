namespace ProcHex.Backends.Linux.Simulation.Kernel;

/// <summary>
/// "Someone else": another process that signals victims (a shell's kill -STOP, a job-control SIGCONT). Its
/// actions happen in the order given, each at an instant the scheduler chooses, interleaved with the victims' turns.
/// </summary>
internal sealed class Outsider
{
    /// <summary>The pid its signals carry in si_pid.</summary>
    public const int Pid = 2;

    private readonly Queue<(string What, Action Act)> _actions = new();

    public bool HasWork => _actions.Count > 0;

    public void Enqueue(string what, Action act) => _actions.Enqueue((what, act));

    /// <summary>Performs the oldest action; returns what it was.</summary>
    public string ActNext()
    {
        var (what, act) = _actions.Dequeue();
        act();
        return what;
    }
}
