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

    public static IRtldAgent? OpenRtldAgent(ILinuxKernel kernel, int pid, IVictimMemory memory, ISymbolTable symbols) =>
        GlibcRtldAgent.TryOpen(kernel, pid, memory, symbols);
}
