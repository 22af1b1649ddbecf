using ProcHex.Arch.X64;
using ProcHex.Ports;

namespace ProcHex.Backends.Ptrace;

/// <summary>
/// Gets a thread that stopped on one of our traps past the instruction the trap replaced, the same way for both
/// ptrace adapters: emulated in the tracer when the x86-64 emulator models the instruction and its effect can be
/// applied (one stop per hit, what a lean C tracer does), otherwise stepped out of line by the adapter.
/// </summary>
/// <remarks>
/// <para>The emulated effect is applied store first, registers second, so a store that fails leaves the thread
/// exactly as it stopped and the step can still run. The step then runs for that hit only: resuming the thread on
/// its trap would make it hit again forever. A store the tracer cannot make is usually a stack page the victim has
/// yet to grow (a write from outside grows a stack only within the tracer's own limits), and is said once per site
/// until the image changes.</para>
/// <para>Not thread-safe: each adapter calls it where it answers a stop (Linux on its owner thread, FreeBSD under
/// its gate), while the thread is in its ptrace stop.</para>
/// </remarks>
/// <typeparam name="TRegisters">The OS's register block.</typeparam>
internal sealed class StepOverPlanner<TRegisters>
    where TRegisters : struct
{
    /// <summary>How much text is read at a trap: the longest x86-64 instruction is 15 bytes.</summary>
    private const int CodeWindow = 16;

    private readonly int _pid;
    private readonly TrapTable _traps;
    private readonly IStepOverHooks<TRegisters> _hooks;
    private readonly Func<ProcHexMetrics> _metrics;
    private HashSet<ulong>? _fellBack;

    /// <summary>A planner for victim <paramref name="pid"/>'s <paramref name="traps"/>, acting through <paramref name="hooks"/>, counting emulated step-overs in <paramref name="metrics"/>.</summary>
    public StepOverPlanner(int pid, TrapTable traps, IStepOverHooks<TRegisters> hooks, Func<ProcHexMetrics> metrics)
    {
        _pid = pid;
        _traps = traps;
        _hooks = hooks;
        _metrics = metrics;
    }

    /// <summary>False to step every hit out of line (the comparison the benchmarks and the simulation make).</summary>
    public bool EmulationEnabled { get; set; } = true;

    /// <summary>
    /// Gets <paramref name="thread"/>, stopped on the trap at <paramref name="patch"/> with its PC rewound onto it,
    /// past the original instruction. False when the adapter's out-of-line step ended in another stop that it kept
    /// (the caller must not resume).
    /// </summary>
    public bool StepOver(int thread, BreakpointPatch patch)
    {
        var registers = _hooks.GetRegisters(thread);
        var at = _hooks.ToNeutral(registers);
        if (at.Rip != patch.Address)
        {
            throw new TracerException($"pid {_pid}: thread {thread} is at 0x{at.Rip:x}, not at the breakpoint 0x{patch.Address:x}");
        }

        if (EmulationEnabled && TryEmulate(thread, patch, registers, at))
        {
            _metrics().RecordStepOver(StepOverKind.Emulated);
            return true;
        }

        return _hooks.StepOutOfLine(thread, patch);
    }

    /// <summary>The text under the trap as it was before our traps: read at the trap's first step-over, kept by the table.</summary>
    private byte[]? OriginalText(BreakpointPatch patch)
    {
        if (_traps.TextAt(patch.Address) is { } kept)
        {
            return kept;
        }

        Span<byte> code = stackalloc byte[CodeWindow];
        var read = _hooks.ReadText(patch.Address, code);
        if (read <= 0)
        {
            return null;
        }

        code = code[..read];
        _traps.Overlay(patch.Address, code);
        code[0] = (byte)patch.OriginalBytes;
        var text = code.ToArray();
        _traps.KeepText(patch.Address, text);
        return text;
    }

    /// <summary>The image changed (an exec): sites whose emulation fell back may be said again.</summary>
    public void ForgetImage() => _fellBack = null;

    private bool TryEmulate(int thread, BreakpointPatch patch, in TRegisters registers, X64Registers state)
    {
        if (OriginalText(patch) is not { } code || !InstructionEmulator.TryEmulate(ref state, code, out var write))
        {
            return false;
        }

        try
        {
            if (write is { } store)
            {
                _hooks.WriteData(store.Address, store.Bytes(stackalloc byte[8]));
            }

            _hooks.SetRegisters(thread, _hooks.FromNeutral(state, registers));
            return true;
        }
        catch (TracerException e) when (!e.IsGone)
        {
            if ((_fellBack ??= []).Add(patch.Address))
            {
                _hooks.EmulationFellBack(patch.Address, e);
            }

            return false;
        }
    }
}
