namespace ProcHex.Arch.X64.Tests;

/// <summary>An object's direct branch targets (issue 18 item 2): what an entry jump must not split, wherever the branch is.</summary>
public sealed class BranchTargetsTests
{
    [Fact]
    [Trait("Issue", "18.2")]
    public void A_jump_from_a_neighbouring_function_into_the_second_instruction_of_an_entry_is_found()
    {
        // 0x1000 mempcpy: mov rax,rdi; add rax,rdx; jmp 0x100f    0x100c memmove: mov rax,rdi; (0x100f) cmp rdx,0x20; ret
        byte[] code =
        [
            0x48, 0x89, 0xF8, 0x48, 0x01, 0xD0, 0xEB, 0x07, 0xCC, 0xCC, 0xCC, 0xCC,
            0x48, 0x89, 0xF8, 0x48, 0x83, 0xFA, 0x20, 0xC3,
        ];

        var targets = BranchTargets.Scan(0x1000, code);

        Assert.Equal(1, targets.Count);
        Assert.Equal(new DirectBranch(0x1006, 0x100f), targets.Inside(0x100c, 0x100c + 5)); // memmove's first 5 bytes: mempcpy's jmp would split them
        Assert.Null(targets.Inside(0x100f, 0x1014)); // a target at the start of a range is no split
        Assert.Null(targets.Inside(0x1000, 0x1005));
    }

    [Fact]
    [Trait("Issue", "18.2")]
    public void Calls_and_conditional_branches_count_and_undecodable_bytes_are_stepped_over()
    {
        // call 0x2010; jne 0x2020; (06: invalid in 64-bit mode); jmp 0x2030
        byte[] code = [0xE8, 0x0B, 0x00, 0x00, 0x00, 0x75, 0x19, 0x06, 0xE9, 0x23, 0x00, 0x00, 0x00];

        var targets = BranchTargets.Scan(0x2000, code);

        Assert.Equal(3, targets.Count);
        Assert.Equal(new DirectBranch(0x2000, 0x2010), targets.Inside(0x200f, 0x2011));
        Assert.Equal(new DirectBranch(0x2005, 0x2020), targets.Inside(0x201f, 0x2021));
        Assert.Equal(new DirectBranch(0x2008, 0x2030), targets.Inside(0x202f, 0x2031));
    }
}
