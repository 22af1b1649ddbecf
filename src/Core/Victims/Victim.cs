using ProcHex.Ports;

namespace ProcHex.Victims;

/// <summary>Placeholder while the control loop is written; replaced in the next commit.</summary>
internal sealed class Victim
{
    public Victim(ITracedProcess process) => Process = process;

    public ITracedProcess Process { get; }

    public int Pid => Process.Pid;

    public bool IsReadOnly => Process.Access == GrabAccess.ReadOnly;

    public VictimState State { get; set; }

    public ExitStatus? Exit { get; set; }

    public Victim Checked() => State == VictimState.Released ? throw new InvalidHandleException($"pid {Pid}: handle was released") : this;

    public ulong LookupSymbol(string objectSymbol) => throw new NotImplementedException(objectSymbol);
}
