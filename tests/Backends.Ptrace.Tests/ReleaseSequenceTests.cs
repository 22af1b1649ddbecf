using ProcHex.Arch.X64;
using ProcHex.Ports;

namespace ProcHex.Backends.Ptrace.Tests;

/// <summary>Issue 16 item 1 and DESIGN S9: the order of a release, the same for both ptrace adapters.</summary>
public sealed class ReleaseSequenceTests
{
    private const ulong Site = 0x401000;

    private readonly FakeVictim _victim = new();
    private readonly TrapTable _traps = new();

    public ReleaseSequenceTests()
    {
        _victim.Map(Site, 0x55);
        _victim.Plant(_traps, Site);
        _victim.Journal.Clear();
    }

    [Theory]
    [InlineData(ReleaseMode.Run)]
    [InlineData(ReleaseMode.Hang)]
    public void Run_and_hang_stop_restore_the_text_then_detach(ReleaseMode mode)
    {
        ReleaseSequence.Run(mode, _traps, _victim, _victim);

        Assert.Equal([$"stop for {mode}", $"write 100 0x{Site:x}=0x55", $"detach {mode}", $"released {mode}"], _victim.Journal);
        Assert.Equal(0, _traps.Count);
    }

    [Fact]
    public void Kill_where_a_kill_needs_no_stop_kills_at_once()
    {
        _victim.KillsWithoutStopping = true;

        ReleaseSequence.Run(ReleaseMode.Kill, _traps, _victim, _victim);

        Assert.Equal(["kill", "released Kill"], _victim.Journal);
    }

    [Fact]
    public void Kill_where_a_kill_needs_a_stop_restores_the_text_on_the_way()
    {
        ReleaseSequence.Run(ReleaseMode.Kill, _traps, _victim, _victim);

        Assert.Equal(["stop for Kill", $"write 100 0x{Site:x}=0x55", "kill", "released Kill"], _victim.Journal);
    }

    [Fact]
    public void A_victim_gone_before_the_release_is_only_forgotten()
    {
        _victim.Gone = true;

        ReleaseSequence.Run(ReleaseMode.Run, _traps, _victim, _victim);

        Assert.Equal(["forget"], _victim.Journal);
    }

    [Fact]
    public void A_victim_that_dies_while_being_stopped_is_neither_written_nor_detached()
    {
        _victim.StopSucceeds = false;

        ReleaseSequence.Run(ReleaseMode.Run, _traps, _victim, _victim);

        Assert.Equal(["stop for Run"], _victim.Journal);
        Assert.Equal(X64Trap.Int3, _victim.Text[FakeVictim.Pid][Site]);
    }

    [Fact]
    public void A_trap_that_cannot_be_restored_is_reported_and_the_victim_still_let_go()
    {
        _victim.Unwritable.Add(Site);

        ReleaseSequence.Run(ReleaseMode.Run, _traps, _victim, _victim);

        Assert.Equal(["stop for Run", $"failed 0x{Site:x}", "detach Run", "released Run"], _victim.Journal);
    }
}
