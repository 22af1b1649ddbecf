using ProcHex.Arch.X64;
using ProcHex.Ports;

namespace ProcHex.Backends.Ptrace.Tests;

/// <summary>
/// Issue 16 item 1 (one step-over planner for both ptrace adapters) and DESIGN S8 (a hit resumes past the original
/// instruction): emulated in one stop where the emulator models the instruction and its effect can be applied,
/// stepped out of line otherwise, and never resumed on its own trap.
/// </summary>
public sealed class StepOverPlannerTests
{
    private const ulong Site = 0x401000;
    private const ulong Stack = 0x7ffd_0000_1000;
    private const int Thread = 101;

    private readonly FakeVictim _victim = new();
    private readonly TrapTable _traps = new();
    private readonly SteppedThread _thread;
    private readonly StepOverPlanner<X64Registers> _planner;

    public StepOverPlannerTests()
    {
        _thread = new SteppedThread(_victim);
        _planner = new StepOverPlanner<X64Registers>(FakeVictim.Pid, _traps, _thread, () => ProcHexMetrics.Shared);
    }

    [Fact]
    public void A_push_under_a_trap_is_emulated_store_and_registers_in_one_stop()
    {
        Entry(0x55, 0x48, 0x89, 0xe5); // push %rbp; mov %rsp,%rbp
        var patch = Plant(Site);

        Assert.True(_planner.StepOver(Thread, patch));

        Assert.Equal(Site + 1, _thread.Registers.Rip);
        Assert.Equal(Stack - 8, _thread.Registers.Rsp);
        Assert.Equal(["store 0x7ffd00000ff8 8 bytes", "set registers"], _thread.Journal);
        Assert.Equal(X64Trap.Int3, _victim.Text[FakeVictim.Pid][Site]);
    }

    [Fact]
    public void The_emulator_sees_the_original_bytes_under_every_trap_of_ours_in_the_window()
    {
        Entry(0x48, 0x89, 0xe5); // mov %rsp,%rbp, with a second trap of ours on its second byte
        var patch = Plant(Site);
        _ = Plant(Site + 1);

        Assert.True(_planner.StepOver(Thread, patch));

        Assert.Equal(Stack, _thread.Registers.Rbp);
        Assert.Equal(Site + 3, _thread.Registers.Rip);
    }

    [Fact]
    public void An_instruction_the_emulator_does_not_model_is_stepped_out_of_line()
    {
        Entry(0xe8, 0, 0, 0, 0); // call rel32
        var patch = Plant(Site);

        Assert.True(_planner.StepOver(Thread, patch));

        Assert.Equal([$"step {Thread} at 0x{Site:x}"], _thread.Journal);
    }

    [Fact]
    public void A_store_the_victim_refuses_falls_back_to_the_step_with_the_thread_untouched_and_is_said_once_per_site()
    {
        Entry(0x55);
        var patch = Plant(Site);
        _thread.RefuseStores = true;

        Assert.True(_planner.StepOver(Thread, patch));
        Assert.True(_planner.StepOver(Thread, patch));

        Assert.Equal(Site, _thread.Registers.Rip);
        Assert.Equal(Stack, _thread.Registers.Rsp);
        Assert.Equal(
            [$"fell back at 0x{Site:x}", $"step {Thread} at 0x{Site:x}", $"step {Thread} at 0x{Site:x}"],
            _thread.Journal);

        _planner.ForgetImage();
        _ = _planner.StepOver(Thread, patch);
        Assert.Equal(2, _thread.Journal.Count(e => e.StartsWith("fell back", StringComparison.Ordinal)));
    }

    [Fact]
    public void A_thread_that_is_gone_fails_the_step_instead_of_falling_back()
    {
        Entry(0x55);
        var patch = Plant(Site);
        _thread.StoreError = TracerErrorKind.Gone;

        Assert.Throws<TracerException>(() => _planner.StepOver(Thread, patch));

        Assert.DoesNotContain(_thread.Journal, e => e.StartsWith("step", StringComparison.Ordinal) || e.StartsWith("fell", StringComparison.Ordinal));
    }

    [Fact]
    public void With_emulation_off_every_hit_is_stepped_out_of_line_and_the_text_is_not_read()
    {
        Entry(0x55);
        var patch = Plant(Site);
        _planner.EmulationEnabled = false;
        _victim.Journal.Clear();

        Assert.True(_planner.StepOver(Thread, patch));

        Assert.Equal([$"step {Thread} at 0x{Site:x}"], _thread.Journal);
        Assert.Equal(0, _thread.TextReads);
    }

    [Fact]
    public void A_step_that_ends_in_another_stop_tells_the_caller_not_to_resume()
    {
        Entry(0xe8, 0, 0, 0, 0);
        var patch = Plant(Site);
        _thread.StepEndsCleanly = false;

        Assert.False(_planner.StepOver(Thread, patch));
    }

    [Fact]
    public void A_thread_that_is_not_on_the_trap_is_an_error_not_a_step()
    {
        Entry(0x55);
        var patch = Plant(Site);
        _thread.Registers = _thread.Registers with { Rip = Site + 1 };

        var e = Assert.Throws<TracerException>(() => _planner.StepOver(Thread, patch));

        Assert.Contains($"thread {Thread} is at 0x{Site + 1:x}, not at the breakpoint 0x{Site:x}", e.Message, StringComparison.Ordinal);
        Assert.Empty(_thread.Journal);
    }

    private void Entry(params byte[] code) => _victim.Map(Site, code);

    private BreakpointPatch Plant(ulong address)
    {
        var original = _victim.Text[FakeVictim.Pid][address];
        _victim.WriteByte(address, X64Trap.Int3);
        return _traps.Add(address, original);
    }

    /// <summary>One thread stopped on the trap at <see cref="Site"/>, its PC rewound, with a journal of what the planner asked.</summary>
    private sealed class SteppedThread(FakeVictim victim) : IStepOverHooks<X64Registers>
    {
        public X64Registers Registers { get; set; } = new() { Rip = Site, Rsp = Stack, Rbp = 0x1234 };

        public List<string> Journal { get; } = [];

        public bool RefuseStores { get; set; }

        public TracerErrorKind? StoreError { get; set; }

        public bool StepEndsCleanly { get; set; } = true;

        public int TextReads { get; private set; }

        public X64Registers GetRegisters(int thread) => Registers;

        public void SetRegisters(int thread, in X64Registers registers)
        {
            Journal.Add("set registers");
            Registers = registers;
        }

        public X64Registers ToNeutral(in X64Registers registers) => registers;

        public X64Registers FromNeutral(in X64Registers neutral, in X64Registers original) => neutral;

        public int ReadText(ulong address, Span<byte> into)
        {
            TextReads++;
            var n = 0;
            while (n < into.Length && victim.Text[FakeVictim.Pid].TryGetValue(address + (ulong)n, out var b))
            {
                into[n++] = b;
            }

            return n;
        }

        public void WriteData(ulong address, ReadOnlySpan<byte> bytes)
        {
            if (StoreError is { } kind)
            {
                throw new TracerException($"cannot store at 0x{address:x}", kind, 3);
            }

            if (RefuseStores)
            {
                throw new TracerException($"cannot store at 0x{address:x}", TracerErrorKind.BadAddress, 14);
            }

            Journal.Add($"store 0x{address:x} {bytes.Length} bytes");
        }

        public bool StepOutOfLine(int thread, BreakpointPatch patch)
        {
            Journal.Add($"step {thread} at 0x{patch.Address:x}");
            return StepEndsCleanly;
        }

        public void EmulationFellBack(ulong site, TracerException error) => Journal.Add($"fell back at 0x{site:x}");
    }
}
