using ProcHex.Ports;
using static ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux;

/// <summary>
/// Fork and vfork children of <see cref="LinuxProcess"/>: they run on untraced, with our traps taken out of their text. Owner only.
/// </summary>
internal sealed partial class LinuxProcess
{
    // fork: the child has a copy of our breakpoints. The cleaner takes them out of its memory, then lets it go.
    bool IForkChildHooks.AwaitFirstStop(int child) => _owner.WaitFor(child) is { Stopped: true };

    byte? IForkChildHooks.ReadText(int child, ulong address)
    {
        Span<byte> b = stackalloc byte[1];
        return Kernel.ProcessVmReadv(child, address, b, out _) == 1 ? b[0] : null;
    }

    void IForkChildHooks.WriteText(int child, ulong address, byte original) => MemoryFile.WriteOnce(Kernel, child, address, [original]);

    void IForkChildHooks.RestorePatches(int child) => RestoreCounterEntries(child);

    void IForkChildHooks.Detach(int child) => _ = TryPtrace(PTRACE_DETACH, child, 0, 0);

    void IForkChildHooks.RestoreFailed(int child, ulong address, TracerException error) =>
        Log.BestEffortFailed(_logger, child, $"restoring text at 0x{address:x}", error.Message);

    void IForkChildHooks.Detached(int child, int traps) => Log.ForkChildDetached(_logger, Pid, child);

    /// <summary>vfork: the child shares our memory, so it is let go only after the core took the breakpoints out.</summary>
    private void CollectVforkChild(int child)
    {
        if (child > 0 && _owner.WaitFor(child) is { Stopped: true })
        {
            _vforkChildren.Add(child);
        }
    }

    private void DetachVforkChildren()
    {
        foreach (var child in _vforkChildren)
        {
            _ = TryPtrace(PTRACE_DETACH, child, 0, 0);
        }

        _vforkChildren.Clear();
    }

    /// <summary>
    /// A victim killed in the middle of a fork (SIGKILL, or exit_group from another thread) takes the fork event
    /// with it, yet the kernel has already attached the new child to us: unclaimed, it would wait in its first
    /// stop, traced, for good (chaos seed 5). A process we trace that is no victim's and whose parent we do not
    /// trace is such a child (the parent of a live victim's child is traced: its event is on the way, and a vfork
    /// child waiting for the next Resume has a traced parent too): it is let go like any fork
    /// child, without the breakpoints it copied. After a death by a signal, or after an exec (<paramref name="afterExec"/>):
    /// exec kills every other thread, one that sat in an unread fork event included, so a child of ours with a traced
    /// parent is orphaned too (linux simulation seed 80). Owner only.
    /// </summary>
    private void LetGoOfOrphanedForkChildren(bool afterExec = false)
    {
        _owner.AssertCurrent();
        var self = Kernel.GetTid();
        foreach (var pid in Kernel.Processes())
        {
            if (pid == Pid || _owner.IsRegistered(pid) || _vforkChildren.Contains(pid) || Kernel.TracerPid(pid) != self
                || Kernel.StatField(pid, 4) is not { } parent || parent == (ulong)Environment.ProcessId
                || (Kernel.TracerPid((int)parent) == self && !(afterExec && parent == (ulong)Pid)))
            {
                continue;
            }

            _ = _forkChildren.Clean(pid);
        }
    }
}
