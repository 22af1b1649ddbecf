namespace ProcHex.Backends.FreeBSD;

/// <summary>x86-64 registers: FreeBSD's <c>struct reg</c> in the core's neutral form and back.</summary>
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

    /// <summary>
    /// <paramref name="original"/> with the registers the neutral form carries replaced by <paramref name="n"/>'s; the
    /// rest (the trap number, the error code and the data segment selectors) stays as it was read.
    /// </summary>
    public static Interop.Reg FromNeutral(in X64Registers n, Interop.Reg original)
    {
        var r = original;
        r.r_rax = (long)n.Rax;
        r.r_rbx = (long)n.Rbx;
        r.r_rcx = (long)n.Rcx;
        r.r_rdx = (long)n.Rdx;
        r.r_rsi = (long)n.Rsi;
        r.r_rdi = (long)n.Rdi;
        r.r_rbp = (long)n.Rbp;
        r.r_rsp = (long)n.Rsp;
        r.r_r8 = (long)n.R8;
        r.r_r9 = (long)n.R9;
        r.r_r10 = (long)n.R10;
        r.r_r11 = (long)n.R11;
        r.r_r12 = (long)n.R12;
        r.r_r13 = (long)n.R13;
        r.r_r14 = (long)n.R14;
        r.r_r15 = (long)n.R15;
        r.r_rip = (long)n.Rip;
        r.r_rflags = (long)n.Rflags;
        r.r_cs = (long)n.Cs;
        r.r_ss = (long)n.Ss;
        return r;
    }
}
