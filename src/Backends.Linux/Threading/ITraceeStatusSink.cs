namespace ProcHex.Backends.Linux;

/// <summary>Receives the wait statuses of the tids registered for it, on the owner thread.</summary>
internal interface ITraceeStatusSink
{
    void OnStatus(int tid, WaitStatus status);
}
