using ProcHex.Elf;
using ProcHex.Ports;
using ProcHex.Backends.Linux.Symbols;

namespace ProcHex.Backends.Linux.Rtld;

/// <summary>
/// glibc's dynamic linker seen through r_debug. Preinit and dlactivity share one breakpoint, r_brk
/// (<c>_dl_debug_state</c>); postinit is a breakpoint on the executable's entry point (AT_ENTRY), reached after
/// the library initializers and before main.
/// </summary>
/// <remarks>
/// <para>What ld.so does, and so what a hit at r_brk means: at startup it sets r_state = RT_ADD and calls r_brk,
/// maps and relocates the initial libraries, sets RT_CONSISTENT and calls r_brk again, then runs the
/// initializers and jumps to AT_ENTRY. Every later dlopen or dlclose calls r_brk twice: RT_ADD (or RT_DELETE),
/// then RT_CONSISTENT. So the first consistent hit is preinit and every other hit is dlactivity.</para>
/// <para>The port's <see cref="IRtldAgent.ReadEventMessage"/> does not say where the victim stopped, and a
/// consistent r_state does not tell r_brk from the entry point. <see cref="ReadEventMessage(ulong)"/> takes the
/// hit address and is exact. Without it, history decides: r_brk always reports a consistent state right after an
/// adding or deleting one, so a consistent state after a consistent one, between preinit and postinit, is the
/// entry point. That is right unless a library initializer uses dlmopen namespaces; the address is never wrong.
/// Either way, call it exactly once per hit.</para>
/// </remarks>
internal sealed class GlibcRtld : IRtldAgent
{
    private readonly IVictimMemory _memory;
    private readonly MappedObject? _executable;
    private readonly Lock _lock = new();
    private ulong _rDebugAddress;
    private ulong _breakAddress;
    private bool _preinitReported;
    private bool _postinitReported;
    private RtldState? _lastState;

    private GlibcRtld(IVictimMemory memory, MappedObject? executable, ulong rDebugAddress, ulong breakAddress, ulong entry, string linkerPath)
    {
        _memory = memory;
        _executable = executable;
        _rDebugAddress = rDebugAddress;
        _breakAddress = breakAddress;
        EntryAddress = entry;
        LinkerPath = linkerPath;

        // Grabbed after startup: the initial list was reported long ago, and AT_ENTRY will not run again.
        if (TryReadDebugState() is { IsInitialized: true, RawState: RDebug.RtConsistent, FirstLinkMap: not 0 })
        {
            _preinitReported = true;
            _postinitReported = true;
            _lastState = RtldState.Consistent;
        }
    }

    /// <summary>The dynamic linker as mapped ("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2").</summary>
    public string LinkerPath { get; }

    /// <summary>AT_ENTRY: the postinit breakpoint.</summary>
    public ulong EntryAddress { get; }

    /// <summary>r_brk, the preinit and dlactivity breakpoint; 0 while unknown.</summary>
    public ulong BreakAddress
    {
        get
        {
            lock (_lock)
            {
                if (_breakAddress == 0 && TryReadDebugState() is { IsInitialized: true } state)
                {
                    _breakAddress = state.BreakAddress;
                }

                return _breakAddress;
            }
        }
    }

    /// <summary>
    /// An agent over an r_debug found some other way (a core file, a test). <paramref name="rDebugAddress"/> 0
    /// means not known yet; <paramref name="breakAddress"/> 0 means read r_brk once r_debug is initialised.
    /// </summary>
    public static GlibcRtld Create(IVictimMemory memory, ulong rDebugAddress, ulong breakAddress, ulong entryAddress, string linkerPath = "ld.so")
    {
        ArgumentNullException.ThrowIfNull(memory);
        return new GlibcRtld(memory, null, rDebugAddress, breakAddress, entryAddress, linkerPath);
    }

    internal static GlibcRtld Open(IVictimMemory memory, ISymbolTable symbols, ProcAuxv auxv)
    {
        var linker = FindLinker(symbols, auxv.InterpreterBase);
        if (linker is null)
        {
            // Symbols read before the linker was mapped (or by someone else): look again once.
            symbols.Refresh();
            linker = FindLinker(symbols, auxv.InterpreterBase);
        }

        var executable = symbols is ProcMapsSymbolTable procMaps ? procMaps.Executable : null;
        ulong rDebug = 0, breakAddress = 0;
        if (linker is not null)
        {
            symbols.TryLookup(linker.Path, GlibcRtldAgent.RDebugSymbol, out rDebug);
            symbols.TryLookup(linker.Path, GlibcRtldAgent.BreakSymbol, out breakAddress);
        }

        return new GlibcRtld(memory, executable, rDebug, breakAddress, auxv.Entry, linker?.Path ?? "ld.so");
    }

    /// <summary>glibc reports every change unconditionally; there is nothing to switch on. False when no event can be planted.</summary>
    public bool EnableEvents() => BreakAddress != 0 || EntryAddress != 0;

    /// <inheritdoc/>
    public bool TryGetEventAddress(RtldEventKind kind, out ulong address)
    {
        address = kind == RtldEventKind.Postinit ? EntryAddress : BreakAddress;
        return address != 0;
    }

    /// <summary>Classifies a hit from r_state and history; prefer <see cref="ReadEventMessage(ulong)"/>.</summary>
    public RtldEventMessage ReadEventMessage() => Classify(hitAddress: null);

    /// <summary>Classifies the hit at <paramref name="hitAddress"/> (the breakpoint's address): exact.</summary>
    /// <exception cref="TracerException">r_debug cannot be found or read.</exception>
    public RtldEventMessage ReadEventMessage(ulong hitAddress) => Classify(hitAddress);

    /// <summary>The linker's r_debug as it is now.</summary>
    /// <exception cref="TracerException">r_debug cannot be found or read.</exception>
    public RDebug ReadDebugState() =>
        TryReadDebugState() ?? throw new TracerException("the dynamic linker's r_debug was not found (no _r_debug symbol in the linker, DT_DEBUG of the executable not set)");

    /// <summary>The library list in load order (the executable first), as the linker has it now.</summary>
    /// <exception cref="TracerException">r_debug or the list cannot be read, or the list is corrupt.</exception>
    public IReadOnlyList<LinkMap> ReadLibraryList() => ReadDebugState().ReadLinkMaps(_memory);

    private RtldEventMessage Classify(ulong? hitAddress)
    {
        lock (_lock)
        {
            var state = ReadDebugState().State;
            RtldEventKind kind;
            var atEntry = hitAddress is { } at && at == EntryAddress && at != _breakAddress;
            if (atEntry || (hitAddress is null && _preinitReported && !_postinitReported && state == RtldState.Consistent && _lastState == RtldState.Consistent))
            {
                kind = RtldEventKind.Postinit;
                _postinitReported = true;
            }
            else if (!_preinitReported && state == RtldState.Consistent)
            {
                kind = RtldEventKind.Preinit;
                _preinitReported = true;
            }
            else
            {
                kind = RtldEventKind.DlActivity;
            }

            _lastState = state;
            return new RtldEventMessage(kind, state);
        }
    }

    private RDebug? TryReadDebugState()
    {
        if (_rDebugAddress == 0 && _executable is not null)
        {
            // No _r_debug in the linker's symbols: the executable's DT_DEBUG, once the linker has set it.
            _rDebugAddress = DynamicLinkerState.FindFromExecutable(_memory, _executable)?.Address ?? 0;
        }

        return _rDebugAddress == 0 ? null : RDebug.Read(_memory, _rDebugAddress);
    }

    private static LoadedObject? FindLinker(ISymbolTable symbols, ulong interpreterBase) =>
        symbols.Objects.FirstOrDefault(o => o.BaseAddress == interpreterBase);
}
