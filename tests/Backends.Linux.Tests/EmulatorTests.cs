using ProcHex.Arch.X64;
using ProcHex.PortContract;
using ProcHex.Ports;
using ProcHex.Backends.Linux.Tests.Support;

namespace ProcHex.Backends.Linux.Tests;

/// <summary>Every emulated instruction: registers and memory after emulation equal those after a real single-step.</summary>
[Trait("Backend", "Linux")]
public sealed class EmulatorTests : LinuxTestBase
{
    public static TheoryData<string> Labels() =>
    [
        "emu_push_rbp", "emu_mov_rsp_rbp", "emu_endbr64", "emu_nop", "emu_nopw", "emu_push_rbx", "emu_push_r12",
        "emu_add_rsp16", "emu_mov_edi_stack", "emu_mov_rbx_stack", "emu_mov_r32", "emu_mov_r64", "emu_sub_rsp",
        "emu_add_rsp", "emu_sub_rcx", "emu_add_rcx", "emu_sub_big", "emu_lea", "emu_lea_sib32", "emu_lea_rip", "emu_xor", "emu_test64", "emu_test32",
    ];

    [Theory]
    [MemberData(nameof(Labels))]
    [Trait("Spec", "S14")]
    public async Task Emulation_matches_a_real_single_step(string label)
    {
        var p = await Create("emulate");
        var address = Observe.LoadBias(p.Pid, FixturePrograms.PathOf("emulate")) + FixturePrograms.Symbol("emulate", label);
        var patch = p.PlantBreakpoint(address);
        p.Resume();
        var hit = await Next(p);
        Assert.Equal(StopReason.Breakpoint, hit.Reason);

        OwnerThread.Shared.Invoke(() =>
        {
            var tid = hit.ThreadId;
            ((LinuxProcess)p).ForgetRegisters(tid); // the test steps the thread itself: what the adapter read in this stop goes stale
            var before = OwnerThread.Shared.Kernel.ReadRegs(tid);
            var code = new byte[16];
            p.ReadMemory(address, code);
            code[0] = (byte)patch.OriginalBytes;
            var neutral = Registers.ToNeutral(before);
            Assert.True(InstructionEmulator.TryEmulate(ref neutral, code, out var write), $"{label} is not emulated");
            var emulated = Registers.FromNeutral(neutral, before);

            p.RemoveBreakpoint(patch);
            Assert.Equal(0, OwnerThread.Shared.Kernel.Ptrace(Interop.Sys.PTRACE_SINGLESTEP, tid, 0, 0));
            var status = OwnerThread.Shared.WaitFor(tid);
            Assert.True(status is { Stopped: true, StopSignal: 5 }, $"step ended with {status}");
            var stepped = OwnerThread.Shared.Kernel.ReadRegs(tid);

            Assert.Equal(Describe(stepped), Describe(emulated));
            if (write is { } w)
            {
                var stored = w.Bytes(new byte[8]).ToArray();
                var memory = new byte[stored.Length];
                p.ReadMemory(w.Address, memory);
                Assert.Equal(memory, stored);
            }
        });

        Assert.Equal(ExitStatus.FromCode(0), (await new PortDriver(p).RunToEnd()).Exit);
    }

    private static string Describe(Interop.UserRegs r) =>
        $"rip={r.rip:x} rsp={r.rsp:x} rbp={r.rbp:x} rax={r.rax:x} rbx={r.rbx:x} rcx={r.rcx:x} rdx={r.rdx:x} rsi={r.rsi:x} rdi={r.rdi:x} " +
        $"r8={r.r8:x} r9={r.r9:x} r10={r.r10:x} r11={r.r11:x} r12={r.r12:x} r13={r.r13:x} r14={r.r14:x} r15={r.r15:x} eflags={r.eflags:x}";
}
