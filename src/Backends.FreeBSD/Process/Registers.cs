namespace ProcHex.Backends.FreeBSD;

/// <summary>x86-64 registers: FreeBSD's <c>struct reg</c> in the core's neutral form.</summary>
internal static class Registers
{
    public static X64Registers ToNeutral(in Interop.Reg r) => new()
    {
        Rax = (ulong)r.r_rax,
        Rbx = (ulong)r.r_rbx,
        Rcx = (ulong)r.r_rcx,
        Rdx = (ulong)r.r_rdx,
        Rsi = (ulong)r.r_rsi,
        Rdi = (ulong)r.r_rdi,
        Rbp = (ulong)r.r_rbp,
        Rsp = (ulong)r.r_rsp,
        R8 = (ulong)r.r_r8,
        R9 = (ulong)r.r_r9,
        R10 = (ulong)r.r_r10,
        R11 = (ulong)r.r_r11,
        R12 = (ulong)r.r_r12,
        R13 = (ulong)r.r_r13,
        R14 = (ulong)r.r_r14,
        R15 = (ulong)r.r_r15,
        Rip = (ulong)r.r_rip,
        Rflags = (ulong)r.r_rflags,
        Cs = (ulong)r.r_cs,
        Ss = (ulong)r.r_ss,
    };
}
