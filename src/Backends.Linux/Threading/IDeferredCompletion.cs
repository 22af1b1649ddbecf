namespace ProcHex.Backends.Linux;

/// <summary>Work the owner runs between statuses, never inside the handling of one (see <see cref="OwnerThread.Defer"/>).</summary>
internal interface IDeferredCompletion
{
    void Complete();
}
