using System.Buffers.Binary;
using ProcHex.Elf;
using ProcHex.Ports;

namespace ProcHex.Backends.FreeBSD;

/// <summary>
/// The debugging interface of FreeBSD's dynamic linker, ld-elf.so.1, found as lib/librtld_db/rtld_db.c finds it:
/// AT_BASE says where rtld is mapped, and its exported functions are the event addresses.
/// </summary>
/// <remarks>
/// What rtld does (libexec/rtld-elf/rtld.c): after relocating the initial objects and before their initializers
/// it calls <c>r_debug_state(NULL, &amp;obj_main-&gt;linkmap)</c> ("say hello to gdb"); after the initializers,
/// <c>_r_debug_postinit</c>; around every dlopen and dlclose it sets <c>r_debug.r_state</c> (RT_ADD or RT_DELETE,
/// then RT_CONSISTENT) and calls r_debug_state again. So r_debug_state is both the preinit and the dlactivity
/// address (as in rtld_db), and which one a hit is follows from whether postinit has been seen. Unlike rtld_db,
/// which always answers "consistent", the state is read from r_debug.r_state (offset 24 in both the old and the
/// current struct r_debug, sys/sys/link_elf.h), so the core refreshes only once the list is consistent.
/// </remarks>
internal sealed class FreeBsdRtldAgent : IRtldAgent
{
    public const string StateFunction = "r_debug_state";
    public const string PostinitFunction = "_r_debug_postinit";
    public const string RDebugVariable = "r_debug";
    private const int RStateOffset = 24;

    private readonly IVictimMemory _memory;
    private readonly Func<ulong> _programCounter;
    private readonly ulong _state;
    private readonly ulong _postinit;
    private readonly ulong _rdebug;
    private bool _postinitSeen;

    private FreeBsdRtldAgent(IVictimMemory memory, Func<ulong> programCounter, ulong state, ulong postinit, ulong rdebug)
    {
        _memory = memory;
        _programCounter = programCounter;
        _state = state;
        _postinit = postinit;
        _rdebug = rdebug;
    }

    /// <summary>
    /// The agent for the current image, or null for a static program (AT_BASE 0) or an rtld that exports neither
    /// function. <paramref name="programCounter"/> reads the PC of the stopped thread (already at the breakpoint).
    /// </summary>
    /// <exception cref="TracerException">The auxiliary vector or the map cannot be read.</exception>
    public static FreeBsdRtldAgent? TryOpen(
        IFreeBsdKernel kernel, int pid, VmMapSymbolTable symbols, IVictimMemory memory, Func<ulong> programCounter)
    {
        var rtldBase = Auxv.InterpreterBase(kernel, pid);
        if (rtldBase == 0 || !symbols.TryFindObject(rtldBase, out var rtld)
            || !rtld.Image.Symbols.TryLookup(StateFunction, out var state))
        {
            return null;
        }

        var postinit = rtld.Image.Symbols.TryLookup(PostinitFunction, out var p) ? rtld.LoadBias + p.Value : 0;
        var rdebug = rtld.Image.Symbols.TryLookup(RDebugVariable, out var r) ? rtld.LoadBias + r.Value : 0;
        return new FreeBsdRtldAgent(memory, programCounter, rtld.LoadBias + state.Value, postinit, rdebug);
    }

    /// <summary>rtld always calls the functions; there is nothing to switch on.</summary>
    public bool EnableEvents() => true;

    public bool TryGetEventAddress(RtldEventKind kind, out ulong address)
    {
        address = kind == RtldEventKind.Postinit ? _postinit : _state;
        return address != 0;
    }

    public RtldEventMessage ReadEventMessage()
    {
        if (_postinit != 0 && _programCounter() == _postinit)
        {
            _postinitSeen = true;
            return new RtldEventMessage(RtldEventKind.Postinit, RtldState.Consistent);
        }

        return new RtldEventMessage(_postinitSeen ? RtldEventKind.DlActivity : RtldEventKind.Preinit, ReadState());
    }

    private RtldState ReadState()
    {
        if (_rdebug == 0)
        {
            return RtldState.Consistent;
        }

        Span<byte> raw = stackalloc byte[4];
        if (_memory.Read(_rdebug + RStateOffset, raw) != raw.Length)
        {
            throw new TracerException($"cannot read r_debug.r_state at 0x{_rdebug + RStateOffset:x}");
        }

        return BinaryPrimitives.ReadInt32LittleEndian(raw) switch
        {
            1 => RtldState.Adding,
            2 => RtldState.Deleting,
            _ => RtldState.Consistent,
        };
    }
}
