namespace ProcHex.Backends.Linux;

/// <summary>x86-64 registers: Linux's <c>user_regs_struct</c> in the core's neutral form.</summary>
internal static class Registers
{
    public static X64Registers ToNeutral(in Interop.UserRegs r) => new()
    {
        Rax = r.rax,
        Rbx = r.rbx,
        Rcx = r.rcx,
        Rdx = r.rdx,
        Rsi = r.rsi,
        Rdi = r.rdi,
        Rbp = r.rbp,
        Rsp = r.rsp,
        R8 = r.r8,
        R9 = r.r9,
        R10 = r.r10,
        R11 = r.r11,
        R12 = r.r12,
        R13 = r.r13,
        R14 = r.r14,
        R15 = r.r15,
        Rip = r.rip,
        Rflags = r.eflags,
        Cs = r.cs,
        Ss = r.ss,
    };
}
