using ProcHex.Ports;

namespace ProcHex.Backends.Ptrace;

/// <summary>The per-OS hooks of <see cref="ForkChildCleaner"/>.</summary>
internal interface IForkChildHooks
{
    /// <summary>Waits for a new child's first stop (it arrives traced); false when there is no stopped child to clean.</summary>
    bool AwaitFirstStop(int child);

    /// <summary>The byte at <paramref name="address"/> in the child's copy of the text; null when it cannot be read.</summary>
    byte? ReadText(int child, ulong address);

    /// <summary>Writes <paramref name="original"/> at <paramref name="address"/> in the child's copy of the text; throws <see cref="TracerException"/>.</summary>
    void WriteText(int child, ulong address, byte original);

    /// <summary>
    /// Takes the backend's other patches out of the child's text (Linux: the entry jumps of in-victim counters, whose
    /// arenas a fork child does not get), best effort. Nothing by default.
    /// </summary>
    void RestorePatches(int child)
    {
    }

    /// <summary>Detaches the child, letting it run on untraced.</summary>
    void Detach(int child);

    /// <summary>A trap could not be taken out of the child's text (best effort: the others still are).</summary>
    void RestoreFailed(int child, ulong address, TracerException error);

    /// <summary>The child runs on untraced, its text cleaned of <paramref name="traps"/> traps.</summary>
    void Detached(int child, int traps);
}
