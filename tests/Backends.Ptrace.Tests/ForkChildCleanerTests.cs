using ProcHex.Arch.X64;

namespace ProcHex.Backends.Ptrace.Tests;

/// <summary>Issue 16 item 1 and DESIGN S13: a fork child runs on untraced with our traps out of its copy of the text.</summary>
public sealed class ForkChildCleanerTests
{
    private const ulong Site = 0x401000;
    private const int Child = 200;

    private readonly FakeVictim _victim = new();
    private readonly TrapTable _traps = new();
    private readonly ForkChildCleaner _cleaner;

    public ForkChildCleanerTests()
    {
        _victim.Map(Site, 0x55, 0x48, 0x89);
        _cleaner = new ForkChildCleaner(_traps, _victim);
    }

    [Fact]
    public void The_child_gets_clean_text_and_is_detached_while_the_parent_keeps_its_traps()
    {
        _victim.Plant(_traps, Site);
        _victim.Plant(_traps, Site + 2);
        _victim.Fork(Child);

        Assert.True(_cleaner.Clean(Child));

        Assert.Equal(new byte[] { 0x55, 0x48, 0x89 }, Enumerable.Range(0, 3).Select(i => _victim.Text[Child][Site + (ulong)i]).ToArray());
        Assert.Equal(X64Trap.Int3, _victim.Text[FakeVictim.Pid][Site]);
        Assert.Equal(["detach child 200", "detached 200 with 2 traps"], _victim.Journal.Where(e => e.StartsWith("detach", StringComparison.Ordinal)));
        Assert.Equal(2, _traps.Count);
    }

    [Fact]
    public void A_child_that_never_stopped_is_left_alone()
    {
        _victim.Plant(_traps, Site);

        Assert.False(_cleaner.Clean(Child));
        Assert.False(_cleaner.Clean(0));
        Assert.DoesNotContain(_victim.Journal, e => e.Contains("child", StringComparison.Ordinal));
    }

    [Fact]
    public void A_trap_that_cannot_be_taken_out_is_reported_and_the_others_still_are()
    {
        _victim.Plant(_traps, Site);
        _victim.Plant(_traps, Site + 2);
        _victim.Fork(Child);
        _victim.Unwritable.Add(Site);

        Assert.True(_cleaner.Clean(Child));

        Assert.Contains($"failed {Child} 0x{Site:x}", _victim.Journal);
        Assert.Equal(0x89, _victim.Text[Child][Site + 2]);
        Assert.Contains("detach child 200", _victim.Journal);
    }

    [Fact]
    public void RestoreText_alone_cleans_without_detaching()
    {
        _victim.Plant(_traps, Site);
        _victim.Fork(Child);

        _cleaner.RestoreText(Child);

        Assert.Equal(0x55, _victim.Text[Child][Site]);
        Assert.DoesNotContain(_victim.Journal, e => e.StartsWith("detach", StringComparison.Ordinal));
    }

    [Fact]
    public void A_trap_removed_after_the_fork_copied_the_text_comes_out_of_the_child_too()
    {
        // The core removes a trap while the victim runs: the kernel had already copied the text for a fork whose
        // event we read only afterwards. The parent's text is clean; the child's copy still holds the int3.
        _victim.Plant(_traps, Site);
        _victim.Plant(_traps, Site + 2);
        _victim.Fork(Child);
        _victim.Remove(_traps, Site + 2);

        Assert.True(_cleaner.Clean(Child));

        Assert.Equal(new byte[] { 0x55, 0x48, 0x89 }, Enumerable.Range(0, 3).Select(i => _victim.Text[Child][Site + (ulong)i]).ToArray());
    }

    [Fact]
    public void A_removed_trap_whose_byte_the_child_no_longer_holds_as_an_int3_is_left_alone()
    {
        // Removed before the fork (the copy is clean there) and the program rewrote that byte since: not ours to touch.
        _victim.Plant(_traps, Site);
        _victim.Remove(_traps, Site);
        _victim.Text[FakeVictim.Pid][Site] = 0x90;
        _victim.Fork(Child);

        Assert.True(_cleaner.Clean(Child));

        Assert.Equal(0x90, _victim.Text[Child][Site]);
        Assert.DoesNotContain(_victim.Journal, e => e.StartsWith($"write {Child}", StringComparison.Ordinal));
    }

    [Fact]
    public void A_trap_planted_after_the_fork_copied_the_text_is_not_written_into_the_child()
    {
        _victim.Fork(Child);
        _victim.Plant(_traps, Site);

        Assert.True(_cleaner.Clean(Child));

        Assert.Equal(0x55, _victim.Text[Child][Site]);
        Assert.DoesNotContain(_victim.Journal, e => e.StartsWith($"write {Child}", StringComparison.Ordinal));
    }
}
