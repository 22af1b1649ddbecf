using ProcHex.Arch.X64;
using ProcHex.Ports;

namespace ProcHex.Backends.Ptrace;

/// <summary>
/// A fork child inherits a copy of the victim's text, our traps included, and arrives traced and stopped before it
/// runs user code. It is never followed: our traps come out of its copy and it is let go (DESIGN S13). A vfork child
/// shares the parent's memory, so cleaning its text cleans the parent's too: only <see cref="RestoreText"/> is used
/// for it, when the parent is no longer there to have the core take the traps out.
/// </summary>
internal sealed class ForkChildCleaner(TrapTable traps, IForkChildHooks hooks)
{
    /// <summary>Waits for the child's first stop, takes our traps out of its text and detaches it; false when no child was there to clean.</summary>
    public bool Clean(int child)
    {
        if (child <= 0 || !hooks.AwaitFirstStop(child))
        {
            return false;
        }

        RestoreText(child);
        hooks.RestorePatches(child);
        hooks.Detach(child);
        hooks.Detached(child, traps.Count);
        return true;
    }

    /// <summary>
    /// Writes the original byte of every trap of this image, planted or removed since, back into
    /// <paramref name="child"/>'s text wherever the child holds an int3, best effort. Removed ones too: the core may
    /// remove a trap while the victim runs, after the kernel copied the text for a fork and before we read the fork's
    /// event (chaos seed 3). Only over an int3: a trap planted after the copy was never in it, and a byte the program
    /// rewrote since a removal is the program's.
    /// </summary>
    public void RestoreText(int child)
    {
        foreach (var (address, original) in traps)
        {
            RestoreIfTrapped(child, address, original);
        }

        foreach (var (address, original) in traps.Removed)
        {
            RestoreIfTrapped(child, address, original);
        }
    }

    private void RestoreIfTrapped(int child, ulong address, byte original)
    {
        if (hooks.ReadText(child, address) == X64Trap.Int3)
        {
            Restore(child, address, original);
        }
    }

    private void Restore(int child, ulong address, byte original)
    {
        try
        {
            hooks.WriteText(child, address, original);
        }
        catch (TracerException e)
        {
            hooks.RestoreFailed(child, address, e);
        }
    }
}
