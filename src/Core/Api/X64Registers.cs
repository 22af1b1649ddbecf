namespace ProcHex;

/// <summary>
/// The user registers of one x86-64 thread, the same on every OS: the sixteen general-purpose registers, the program
/// counter, the flags and the code and stack selectors. Backends translate their own layout (Linux's
/// <c>user_regs_struct</c>, FreeBSD's <c>struct reg</c>) into it; segment bases and vector registers are not part of it.
/// </summary>
public readonly record struct X64Registers
{
    public ulong Rax { get; init; }

    public ulong Rbx { get; init; }

    public ulong Rcx { get; init; }

    public ulong Rdx { get; init; }

    public ulong Rsi { get; init; }

    public ulong Rdi { get; init; }

    public ulong Rbp { get; init; }

    public ulong Rsp { get; init; }

    public ulong R8 { get; init; }

    public ulong R9 { get; init; }

    public ulong R10 { get; init; }

    public ulong R11 { get; init; }

    public ulong R12 { get; init; }

    public ulong R13 { get; init; }

    public ulong R14 { get; init; }

    public ulong R15 { get; init; }

    /// <summary>The program counter. At a breakpoint hit it is the breakpoint's address (already rewound past the trap).</summary>
    public ulong Rip { get; init; }

    public ulong Rflags { get; init; }

    public ulong Cs { get; init; }

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
