namespace ProcHex.Backends.Linux;

/// <summary>x86-64 registers: Linux's <c>user_regs_struct</c> in the core's neutral form and back.</summary>
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

    /// <summary>
    /// <paramref name="original"/> with the registers the neutral form carries replaced by <paramref name="n"/>'s; the
    /// rest (orig_rax, the segment bases and selectors other than cs and ss) stays as it was read.
    /// </summary>
    public static Interop.UserRegs FromNeutral(in X64Registers n, Interop.UserRegs original)
    {
        var r = original;
        r.rax = n.Rax;
        r.rbx = n.Rbx;
        r.rcx = n.Rcx;
        r.rdx = n.Rdx;
        r.rsi = n.Rsi;
        r.rdi = n.Rdi;
        r.rbp = n.Rbp;
        r.rsp = n.Rsp;
        r.r8 = n.R8;
        r.r9 = n.R9;
        r.r10 = n.R10;
        r.r11 = n.R11;
        r.r12 = n.R12;
        r.r13 = n.R13;
        r.r14 = n.R14;
        r.r15 = n.R15;
        r.rip = n.Rip;
        r.eflags = n.Rflags;
        r.cs = n.Cs;
        r.ss = n.Ss;
        return r;
    }
}
