using ProcHex.Arch.X64;

namespace ProcHex.Backends.Ptrace.Tests;

/// <summary>
/// Issue 16 item 1: the planted-trap table both ptrace adapters use, and its "was this trap ours" rule (the PC is one
/// past the trap; DESIGN S14 and the port contract's "a just-removed trap rewinds silently").
/// </summary>
public sealed class TrapTableTests
{
    private const ulong Site = 0x401000;

    private readonly FakeVictim _victim = new();
    private readonly TrapTable _traps = new();

    public TrapTableTests() => _victim.Map(Site, 0x55, 0x48, 0x89, 0xe5);

    [Fact]
    public void A_planted_trap_is_ours_and_keeps_the_byte_it_replaced()
    {
        _victim.Plant(_traps, Site);

        Assert.Equal(TrapVerdict.Ours, _traps.Judge(Site, _victim));
        Assert.True(_traps.TryGetOriginal(Site, out var original));
        Assert.Equal(0x55, original);
        Assert.DoesNotContain($"read 0x{Site:x}", _victim.Journal); // a planted trap needs no look at the text
    }

    [Fact]
    public void A_trap_removed_since_the_hit_is_rewound_silently()
    {
        _victim.Plant(_traps, Site);
        Assert.True(_traps.Remove(Site));
        _victim.WriteByte(Site, 0x55);

        Assert.Equal(TrapVerdict.Removed, _traps.Judge(Site, _victim));
    }

    [Fact]
    public void A_program_int3_where_we_never_planted_is_not_ours()
    {
        _victim.Map(0x402000, X64Trap.Int3);

        Assert.Equal(TrapVerdict.NotOurs, _traps.Judge(0x402000, _victim));
    }

    [Fact]
    public void The_second_byte_of_a_two_byte_int_3_is_not_ours()
    {
        // int $3 (CD 03) stops like int3 with the PC after it: the byte before the PC is 0x03, not a trap. The rule
        // Linux used ("not an int3 there, so a trap of ours just removed") rewound it into the middle of the instruction.
        _victim.Map(0x403000, 0xCD, 0x03);

        Assert.Equal(TrapVerdict.NotOurs, _traps.Judge(0x403001, _victim));
    }

    [Fact]
    public void A_removed_address_where_the_program_wrote_its_own_int3_is_not_ours()
    {
        _victim.Plant(_traps, Site);
        _ = _traps.Remove(Site);
        _victim.WriteByte(Site, X64Trap.Int3);

        Assert.Equal(TrapVerdict.NotOurs, _traps.Judge(Site, _victim));
    }

    [Fact]
    public void An_unreadable_removed_address_is_not_ours()
    {
        _ = _traps.Add(0x9000, 0x90);
        _ = _traps.Remove(0x9000);

        Assert.Equal(TrapVerdict.NotOurs, _traps.Judge(0x9000, _victim));
    }

    [Fact]
    public void Planting_again_where_a_trap_was_removed_makes_it_ours_again()
    {
        _victim.Plant(_traps, Site);
        _ = _traps.Remove(Site);
        _victim.WriteByte(Site, 0x55);
        _victim.Plant(_traps, Site);

        Assert.Equal(TrapVerdict.Ours, _traps.Judge(Site, _victim));
        Assert.Equal(1, _traps.Count);
    }

    [Fact]
    public void Removing_what_was_never_planted_says_so()
    {
        Assert.False(_traps.Remove(Site));
        Assert.Equal(TrapVerdict.NotOurs, _traps.Judge(Site, _victim));
    }

    [Fact]
    public void After_an_exec_nothing_of_the_old_image_is_ours()
    {
        _victim.Plant(_traps, Site);
        _victim.Plant(_traps, Site + 2);
        _ = _traps.Remove(Site + 2);
        _victim.Map(Site, 0x11, 0x22, 0x33);

        _traps.Clear();

        Assert.Equal(0, _traps.Count);
        Assert.Equal(TrapVerdict.NotOurs, _traps.Judge(Site, _victim));
        Assert.Equal(TrapVerdict.NotOurs, _traps.Judge(Site + 2, _victim));
    }

    [Fact]
    public void Overlay_shows_the_original_bytes_under_our_traps_within_the_window_only()
    {
        _victim.Plant(_traps, Site + 1);
        _victim.Plant(_traps, Site + 3);
        _ = _traps.Add(Site + 4, 0x77); // just past the window

        var text = new byte[] { 0x55, 0xCC, 0x89, 0xCC };
        _traps.Overlay(Site, text);

        Assert.Equal(new byte[] { 0x55, 0x48, 0x89, 0xe5 }, text);
    }

    [Fact]
    public void Overlay_of_a_window_that_starts_after_a_trap_leaves_it_alone()
    {
        _victim.Plant(_traps, Site);
        var text = new byte[] { 0x48, 0x89 };

        _traps.Overlay(Site + 1, text);

        Assert.Equal(new byte[] { 0x48, 0x89 }, text);
    }

    [Fact]
    public void RestoreAll_puts_the_text_back_and_a_thread_that_hit_a_trap_just_before_is_still_rewound()
    {
        _victim.Plant(_traps, Site);
        _victim.Plant(_traps, Site + 2);

        _traps.RestoreAll(_victim, (_, _) => true);

        Assert.Equal(0x55, _victim.Text[FakeVictim.Pid][Site]);
        Assert.Equal(0x89, _victim.Text[FakeVictim.Pid][Site + 2]);
        Assert.Equal(0, _traps.Count);
        Assert.Equal(TrapVerdict.Removed, _traps.Judge(Site, _victim));
    }

    [Fact]
    public void RestoreAll_reports_a_failed_write_and_goes_on_or_stops_as_told()
    {
        _victim.Plant(_traps, Site);
        _victim.Plant(_traps, Site + 2);
        _victim.Unwritable.Add(Site);
        var failures = new List<ulong>();

        _traps.RestoreAll(_victim, (address, _) =>
        {
            failures.Add(address);
            return true;
        });

        Assert.Equal([Site], failures);
        Assert.Equal(0x89, _victim.Text[FakeVictim.Pid][Site + 2]);
        Assert.Equal(0, _traps.Count);
    }

    [Fact]
    public void RestoreAll_stops_at_the_first_failure_when_told_to()
    {
        _victim.Plant(_traps, Site);
        _victim.Plant(_traps, Site + 2);
        _victim.Unwritable.Add(Site);

        _traps.RestoreAll(_victim, (_, _) => false);

        // Dictionary order is insertion order here: the failing one came first, the other was not written.
        Assert.Equal(X64Trap.Int3, _victim.Text[FakeVictim.Pid][Site + 2]);
        Assert.Equal(0, _traps.Count);
    }
}
