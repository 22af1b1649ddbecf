using ProcHex.Backends.Linux.Symbols;
using ProcHex.Elf;
using ProcHex.Ports;

namespace ProcHex.Backends.Linux.Rtld;

/// <summary>Opens the glibc dynamic linker's debugging interface (r_debug) of a Linux victim.</summary>
internal static class GlibcRtldAgent
{
    /// <summary>The linker's r_debug, exported by ld.so from the start (the executable's DT_DEBUG points at it later).</summary>
    public const string RDebugSymbol = "_r_debug";

    /// <summary>The empty function ld.so calls around every library-list change: r_brk.</summary>
    public const string BreakSymbol = "_dl_debug_state";

    /// <summary>
    /// The agent for <paramref name="pid"/>'s current image, or null when the program has no dynamic linker
    /// (statically linked, static-pie included: AT_BASE is 0). Call it at the exec stop or later; ld.so is mapped
    /// from the exec stop on, so the events are known before the linker has run.
    /// </summary>
    /// <exception cref="TracerException">The victim's auxiliary vector cannot be read.</exception>
    public static IRtldAgent? TryOpen(int pid, IVictimMemory memory, ISymbolTable symbols) =>
        TryOpen(LinuxKernel.Instance, pid, memory, symbols);

    /// <inheritdoc cref="TryOpen(int, IVictimMemory, ISymbolTable)"/>
    internal static IRtldAgent? TryOpen(ILinuxKernel kernel, int pid, IVictimMemory memory, ISymbolTable symbols)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(symbols);
        var auxv = ProcAuxv.ReadOrThrow(kernel, pid);
        return auxv.InterpreterBase == 0 ? null : GlibcRtld.Open(memory, symbols, auxv);
    }
}
