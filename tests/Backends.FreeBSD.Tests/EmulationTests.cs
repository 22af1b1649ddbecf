using ProcHex.Backends.FreeBSD.Tests.FakeKernel;
using ProcHex.Ports;
using static ProcHex.Backends.FreeBSD.Tests.AdapterHarness;

namespace ProcHex.Backends.FreeBSD.Tests;

/// <summary>
/// Issue 16 item 1: FreeBSD steps over a breakpoint with the shared x86-64 emulator (the one Linux uses), so a
/// function's usual opening instructions cost one stop and no PT_STEP; the registers and the store it writes are the
/// instruction's exact effect.
/// </summary>
[Trait("Backend", "FreeBSD")]
public abstract class EmulationTests(FakeAttach attach)
{
    private const ulong Prologue = FakePrograms.Main + 0x380;
    private const ulong Top = FakeFreeBsdKernel.StackTop;

    [Fact]
    [Trait("Spec", "S14")]
    public async Task A_push_rbp_mov_rbp_rsp_sub_rsp_entry_is_emulated_not_stepped()
    {
        var text = FakePrograms.Text();
        byte[] entry = [0x55, 0x48, 0x89, 0xE5, 0x48, 0x83, 0xEC, 0x20]; // push rbp; mov rbp,rsp; sub rsp,0x20
        entry.CopyTo(text, (int)(Prologue - FakePrograms.Main));
        var kernel = new FakeFreeBsdKernel(attach);
        kernel.AddFile(Image(text, new Call(FakePrograms.Main), new Call(Prologue), new Call(Prologue + 1), new Call(Prologue + 4), new Exit(0)));
        using var process = await CreateAsync(kernel, FakePrograms.Loop);
        process.BeginControl();
        var patches = new[] { Prologue, Prologue + 1, Prologue + 4 }.ToDictionary(a => a, process.PlantBreakpoint);

        var (exit, hits, _) = await RunToExitAsync(process, patches);

        Assert.Equal(0, exit.Exit.Code);
        Assert.All(patches.Keys, a => Assert.Equal(1, hits[a]));
        Assert.DoesNotContain(kernel.Calls, c => c.StartsWith("PT_STEP", StringComparison.Ordinal));
        Assert.Empty(kernel.Violations);
        var set = kernel.Process(process.Pid).Threads[0].RegistersSet;
        // The fake reports rsp = StackTop and rbp = 0 at every stop: each instruction's effect from there.
        Assert.Contains(set, r => r.r_rip == (long)Prologue + 1 && r.r_rsp == (long)Top - 8 && r.r_rbp == 0);
        Assert.Contains(set, r => r.r_rip == (long)Prologue + 4 && r.r_rsp == (long)Top && r.r_rbp == (long)Top);
        Assert.Contains(set, r => r.r_rip == (long)Prologue + 8 && r.r_rsp == (long)Top - 0x20 && (r.r_rflags & 0x8D5) == 0);
        Assert.Equal(new byte[8], kernel.Process(process.Pid).Memory.Read(Top - 8, 8)); // push rbp stored rbp (0)
    }

    [Fact]
    [Trait("Spec", "S14")]
    public async Task Gcc_O2s_mov_edi_to_the_red_zone_is_emulated_when_the_stack_is_there()
    {
        var kernel = new FakeFreeBsdKernel(attach);
        kernel.AddFile(Image(FakePrograms.Text(), new Call(FakePrograms.Main), new Call(FakePrograms.Work, Arguments: [0x1234_5678_9abc_def0]), new Exit(0)));
        using var process = await CreateAsync(kernel, FakePrograms.Loop);
        process.BeginControl();
        var patch = process.PlantBreakpoint(FakePrograms.Work);

        var (_, hits, _) = await RunToExitAsync(process, new Dictionary<ulong, BreakpointPatch> { [FakePrograms.Work] = patch });

        Assert.Equal(1, hits[FakePrograms.Work]);
        Assert.DoesNotContain(kernel.Calls, c => c.StartsWith("PT_STEP", StringComparison.Ordinal));
        Assert.Empty(kernel.Violations);
        Assert.Equal(new byte[] { 0xf0, 0xde, 0xbc, 0x9a }, kernel.Process(process.Pid).Memory.Read(Top - 4, 4));
    }

    private static FakeImage Image(byte[] text, params FakeStep[] steps) => new()
    {
        Path = FakePrograms.Loop,
        Text = text,
        TextBase = FakePrograms.Main,
        Entry = FakePrograms.Main,
        Steps = steps,
        Libraries = FakePrograms.Image(FakePrograms.Loop).Libraries,
        StackBelowTop = 0x1000,
    };
}

/// <summary>The same tests with FreeBSD 14's classic PT_ATTACH.</summary>
public sealed class EmulationTestsClassicAttach() : EmulationTests(FakeAttach.Classic);

/// <summary>The same tests with transparent attach (debug.ptrace_attach_transparent).</summary>
public sealed class EmulationTestsTransparentAttach() : EmulationTests(FakeAttach.Transparent);
