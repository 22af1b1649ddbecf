using ProcHex.Backends.Linux.Rtld;
using ProcHex.Backends.Linux.Symbols;
using ProcHex.Elf;
using ProcHex.Ports;

namespace ProcHex.Backends.Linux;

/// <summary>
/// Where a victim's symbols and rtld agent come from: the ELF code in Symbols/ and Rtld/. The one place that
/// names it, so the tracing code does not depend on how symbols are read.
/// </summary>
internal static class SymbolSource
{
    public static ISymbolTable CreateSymbolTable(ILinuxKernel kernel, int pid, IVictimMemory memory) =>
        new ProcMapsSymbolTable(kernel, pid, memory);

    /// <summary>
    /// Main as the entry code at AT_ENTRY passes it to the C runtime (<see cref="StartCode"/>), only if it is code: a
    /// hand-written <c>_start</c> may pass a string to its first call, and a trap must never go into data.
    /// </summary>
    /// <exception cref="TracerException">The auxiliary vector or the mappings cannot be read.</exception>
    public static bool TryFindMainFromEntryCode(ILinuxKernel kernel, int pid, Func<ulong, byte[]> readText, out ulong main)
    {
        var entry = ProcAuxv.ReadOrThrow(kernel, pid).Entry;
        if (entry == 0 || !StartCode.TryFindMain(readText(entry), entry, readText, out main))
        {
            main = 0;
            return false;
        }

        var at = main;
        return ProcMaps.ReadOrThrow(kernel, pid).Any(m => m.IsExecutable && at >= m.Start && at < m.End);
    }

    public static IRtldAgent? OpenRtldAgent(ILinuxKernel kernel, int pid, IVictimMemory memory, ISymbolTable symbols) =>
        GlibcRtldAgent.TryOpen(kernel, pid, memory, symbols);
}
