namespace ProcHex.Elf.Tests;

/// <summary>
/// Issue 17, item 2: main read from the entry code of stripped executables. The glibc bytes are Debian 12's gcc 12
/// / glibc 2.36 builds of the loop fixture (objdump -d); the musl ones follow crt/x86_64/crt1 and crt1.c.
/// </summary>
public sealed class StartCodeTests
{
    private static readonly byte[] Prologue = Hex("31ed 4989d1 5e 4889e2 4883e4f0 50 54 4531c0 31c9");

    private static byte[] Hex(string text) => Convert.FromHexString(text.Replace(" ", "", StringComparison.Ordinal));

    private static ulong? Find(byte[] code, ulong entry, Func<ulong, byte[]>? read = null) =>
        StartCode.TryFindMain(code, entry, read ?? (_ => throw new InvalidOperationException("nothing to follow")), out var main) ? main : null;

    [Fact]
    [Trait("Issue", "17")]
    public void A_PIE_loads_main_with_a_rip_relative_lea()
    {
        // lea rdi,[rip+0x123]; call [rip+__libc_start_main@GOTPCREL]; hlt
        byte[] code = [.. Prologue, .. Hex("488d3d23010000 ff154f2f0000 f4")];

        Assert.Equal(0x118eul, Find(code, 0x1050));
        Assert.Equal(0x5555_5555_518eul, Find(code, 0x5555_5555_5050));
    }

    [Fact]
    [Trait("Issue", "17")]
    public void An_endbr64_before_the_start_code_changes_nothing()
    {
        byte[] code = [.. Hex("f30f1efa"), .. Prologue, .. Hex("488d3d23010000 ff154f2f0000 f4")];

        Assert.Equal(0x1192ul, Find(code, 0x1050));
    }

    [Fact]
    [Trait("Issue", "17")]
    public void Non_PIE_and_static_executables_load_main_as_an_immediate()
    {
        byte[] nonPie = [.. Prologue, .. Hex("48c7c77b114000 ff15772f0000 f4")];
        byte[] staticCall = [.. Prologue, .. Hex("48c7c76a164000 67e83f130000 f4")];
        byte[] olderToolchain = [.. Prologue, .. Hex("bf7b114000 e8f0ffffff f4")];

        Assert.Equal(0x40117bul, Find(nonPie, 0x401040));
        Assert.Equal(0x40166aul, Find(staticCall, 0x4014f0));
        Assert.Equal(0x40117bul, Find(olderToolchain, 0x401040));
    }

    [Fact]
    [Trait("Issue", "17")]
    public void Musl_is_followed_into_start_c_which_tail_calls_libc_start_main()
    {
        // _start: xor rbp,rbp; mov rdi,rsp; lea rsi,[rip+_DYNAMIC]; and rsp,-16; call _start_c (at 0x1100)
        byte[] start = Hex("4831ed 4889e7 488d3500100000 4883e4f0 e8ea000000");
        // _start_c: mov rsi,[rdi]... ; lea rdi,[rip+main]; jmp __libc_start_main
        byte[] startC = Hex("488d5708 8b37 488d3df3000000 e900000000");
        var follows = new List<ulong>();

        var main = Find(start, 0x1000, at =>
        {
            follows.Add(at);
            return startC;
        });

        Assert.Equal([0x1100ul], follows);
        Assert.Equal(0x1100ul + 13 + 0xf3, main);
    }

    [Fact]
    [Trait("Issue", "17")]
    public void Main_loaded_from_the_GOT_is_not_a_constant_and_is_left_to_libc_start_main()
    {
        // main defined in a shared library (main-in-lib): mov rdi,[rip+main@GOT]; call [rip+__libc_start_main@GOT]
        byte[] code = [.. Prologue, .. Hex("488b3d752f0000 ff15572f0000 f4")];

        Assert.Null(Find(code, 0x1040));
    }

    [Fact]
    [Trait("Issue", "17")]
    public void A_constant_overwritten_before_the_call_is_not_main()
    {
        // lea rdi,[rip+X]; mov rdi,rsp; call target, whose code returns at once
        byte[] code = Hex("488d3d23010000 4889e7 e800010000");

        Assert.Null(Find(code, 0x2000, _ => Hex("c3")));
    }

    [Fact]
    [Trait("Issue", "17")]
    public void Entry_code_that_calls_nothing_is_not_recognised()
    {
        // -nostdlib: push rbp; mov rbp,rsp; mov eax,60; xor edi,edi; syscall
        Assert.Null(Find(Hex("55 4889e5 b83c000000 31ff 0f05"), 0x401000));
        Assert.Null(Find([], 0x401000));
        Assert.Null(Find(Hex("0f0b"), 0x401000));
    }
}
