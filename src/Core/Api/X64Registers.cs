namespace ProcHex;

/// <summary>
/// The user registers of one x86-64 thread, the same on every OS: the sixteen general-purpose registers, the program
/// counter, the flags and the code and stack selectors. Backends translate their own layout (Linux's
/// <c>user_regs_struct</c>, FreeBSD's <c>struct reg</c>) into it; segment bases and vector registers are not part of it.
/// </summary>
public readonly record struct X64Registers
{
    /// <summary>rax: the return value register.</summary>
    public ulong Rax { get; init; }

    /// <summary>rbx (callee-saved).</summary>
    public ulong Rbx { get; init; }

    /// <summary>rcx: the fourth integer argument.</summary>
    public ulong Rcx { get; init; }

    /// <summary>rdx: the third integer argument.</summary>
    public ulong Rdx { get; init; }

    /// <summary>rsi: the second integer argument.</summary>
    public ulong Rsi { get; init; }

    /// <summary>rdi: the first integer argument.</summary>
    public ulong Rdi { get; init; }

    /// <summary>rbp: the frame pointer, when the code keeps one.</summary>
    public ulong Rbp { get; init; }

    /// <summary>rsp: the stack pointer; at a function's first instruction it points at the return address.</summary>
    public ulong Rsp { get; init; }

    /// <summary>r8: the fifth integer argument.</summary>
    public ulong R8 { get; init; }

    /// <summary>r9: the sixth integer argument.</summary>
    public ulong R9 { get; init; }

    /// <summary>r10 (the fourth argument of a system call).</summary>
    public ulong R10 { get; init; }

    /// <summary>r11 (clobbered by the syscall instruction).</summary>
    public ulong R11 { get; init; }

    /// <summary>r12 (callee-saved).</summary>
    public ulong R12 { get; init; }

    /// <summary>r13 (callee-saved).</summary>
    public ulong R13 { get; init; }

    /// <summary>r14 (callee-saved).</summary>
    public ulong R14 { get; init; }

    /// <summary>r15 (callee-saved).</summary>
    public ulong R15 { get; init; }

    /// <summary>The program counter. At a breakpoint hit it is the breakpoint's address (already rewound past the trap).</summary>
    public ulong Rip { get; init; }

    /// <summary>The flags register (carry, zero, sign, trap...).</summary>
    public ulong Rflags { get; init; }

    /// <summary>The code segment selector (0x33 for 64-bit user code on Linux).</summary>
    public ulong Cs { get; init; }

    /// <summary>The stack segment selector.</summary>
    public ulong Ss { get; init; }

    /// <summary>
    /// Integer argument <paramref name="index"/> (0 to 5) by the System V AMD64 calling convention: rdi, rsi, rdx, rcx,
    /// r8, r9. Meaningful at a function's first instruction, before the function reuses those registers.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Not 0 to 5: later arguments are on the stack.</exception>
    public ulong IntegerArgument(int index) => index switch
    {
        0 => Rdi,
        1 => Rsi,
        2 => Rdx,
        3 => Rcx,
        4 => R8,
        5 => R9,
        _ => throw new ArgumentOutOfRangeException(nameof(index), index, "the System V ABI passes integer arguments 0 to 5 in registers; later ones are on the stack"),
    };
}
