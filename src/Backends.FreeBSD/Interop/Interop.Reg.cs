using System.Runtime.InteropServices;

internal static partial class Interop
{
    /// <summary>
    /// struct reg on amd64 (struct __reg64, sys/x86/include/reg.h): 176 bytes (freebsd-abi.md section 3).
    /// PT_GETREGS/PT_SETREGS with pid = a thread id read or write that thread.
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct Reg
    {
        internal long r_r15;
        internal long r_r14;
        internal long r_r13;
        internal long r_r12;
        internal long r_r11;
        internal long r_r10;
        internal long r_r9;
        internal long r_r8;
        internal long r_rdi;
        internal long r_rsi;
        internal long r_rbp;
        internal long r_rbx;
        internal long r_rdx;
        internal long r_rcx;
        internal long r_rax;
        internal uint r_trapno;
        internal ushort r_fs;
        internal ushort r_gs;
        internal uint r_err;
        internal ushort r_es;
        internal ushort r_ds;
        internal long r_rip;
        internal long r_cs;
        internal long r_rflags;
        internal long r_rsp;
        internal long r_ss;
    }
}
