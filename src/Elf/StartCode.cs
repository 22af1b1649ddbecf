using Iced.Intel;

namespace ProcHex.Elf;

/// <summary>
/// Finds <c>main</c> in an x86-64 executable's entry code (<c>_start</c>, at AT_ENTRY), for executables without a
/// <c>main</c> symbol whose <c>__libc_start_main</c> cannot be broken on either: a stripped static executable has
/// no symbol at all. Every C runtime hands <c>main</c> to its start routine as the first argument, so the value
/// loaded into rdi before <c>_start</c>'s first call or jump is main.
/// </summary>
/// <remarks>
/// What the entry code looks like (glibc 2.34 and later, <c>sysdeps/x86_64/start.S</c>, checked on Debian 12
/// builds): PIE and static-pie load main with <c>lea rdi,[rip+main]</c>, non-PIE and static with
/// <c>mov rdi,main</c> (older toolchains <c>mov edi,main</c>), then call <c>__libc_start_main</c>. musl's
/// <c>_start</c> passes the stack pointer to <c>_start_c</c> (<c>crt/crt1.c</c>), which tail-calls
/// <c>__libc_start_main(main, ...)</c>: when rdi holds no constant at the first transfer of control, the decoder
/// follows one direct call or jump and looks again. glibc before 2.34 loaded main from the GOT in PIEs
/// (<c>mov rdi,[rip+main@GOTPCREL]</c>), which is not a constant here: such an executable is found through
/// <c>__libc_start_main</c> instead, which it always imports.
/// </remarks>
public static class StartCode
{
    /// <summary>How many bytes of code to read at the entry point and at the one routine it may lead to.</summary>
    public const int WindowSize = 128;

    private const int MaxInstructions = 40;

    /// <summary>
    /// The value <paramref name="code"/>, the start code at <paramref name="entry"/>, passes as the first argument
    /// of its first call or jump; <paramref name="read"/> returns up to <see cref="WindowSize"/> bytes of code at a
    /// direct call's target (the original text under any breakpoint). False when no constant is passed.
    /// </summary>
    public static bool TryFindMain(ReadOnlySpan<byte> code, ulong entry, Func<ulong, byte[]> read, out ulong main)
    {
        ArgumentNullException.ThrowIfNull(read);
        main = 0;
        var outcome = Scan(code.ToArray(), entry, out main, out var next);
        if (outcome == ScanOutcome.Found)
        {
            return true;
        }

        if (outcome == ScanOutcome.Follow && next != 0)
        {
            return Scan(read(next), next, out main, out _) == ScanOutcome.Found;
        }

        return false;
    }

    private enum ScanOutcome
    {
        Found,
        Follow,
        Unknown,
    }

    /// <summary>Decodes up to the first transfer of control, tracking whether rdi holds a constant.</summary>
    private static ScanOutcome Scan(byte[] code, ulong ip, out ulong main, out ulong directTarget)
    {
        main = 0;
        directTarget = 0;
        var decoder = Decoder.Create(64, new ByteArrayCodeReader(code), ip);
        var info = new InstructionInfoFactory();
        ulong? rdi = null;
        var end = ip + (ulong)code.Length;
        for (var n = 0; n < MaxInstructions && decoder.IP < end; n++)
        {
            decoder.Decode(out var instruction);
            if (instruction.IsInvalid || instruction.NextIP > end)
            {
                return ScanOutcome.Unknown;
            }

            switch (instruction.FlowControl)
            {
                case FlowControl.Call or FlowControl.UnconditionalBranch or FlowControl.IndirectCall or FlowControl.IndirectBranch:
                    if (rdi is { } value && value != 0)
                    {
                        main = value;
                        return ScanOutcome.Found;
                    }

                    directTarget = instruction.FlowControl is FlowControl.Call or FlowControl.UnconditionalBranch
                        && instruction.Op0Kind is OpKind.NearBranch64
                        ? instruction.NearBranchTarget
                        : 0;
                    return ScanOutcome.Follow;
                case FlowControl.Next:
                    break;
                default:
                    // A conditional branch, return, trap or halt before any call: not a start routine we know.
                    return ScanOutcome.Unknown;
            }

            if (ConstantLoadedIntoRdi(instruction) is { } loaded)
            {
                rdi = loaded;
            }
            else if (WritesRdi(info, instruction))
            {
                rdi = null;
            }
        }

        return ScanOutcome.Unknown;
    }

    /// <summary><c>lea rdi,[rip+X]</c>, <c>mov rdi,imm32</c> (sign-extended) or <c>mov edi,imm32</c> (zero-extended).</summary>
    private static ulong? ConstantLoadedIntoRdi(in Instruction instruction) => instruction.Code switch
    {
        Code.Lea_r64_m when instruction.Op0Register == Register.RDI && instruction.IsIPRelativeMemoryOperand => instruction.IPRelativeMemoryAddress,
        Code.Mov_rm64_imm32 when instruction.Op0Kind == OpKind.Register && instruction.Op0Register == Register.RDI => (ulong)instruction.Immediate32to64,
        Code.Mov_r64_imm64 when instruction.Op0Register == Register.RDI => instruction.Immediate64,
        Code.Mov_r32_imm32 when instruction.Op0Register == Register.EDI => instruction.Immediate32,
        _ => null,
    };

    private static bool WritesRdi(InstructionInfoFactory factory, in Instruction instruction)
    {
        foreach (var used in factory.GetInfo(instruction).GetUsedRegisters())
        {
            if (used.Register.GetFullRegister() == Register.RDI && used.Access is not (OpAccess.Read or OpAccess.CondRead or OpAccess.None or OpAccess.NoMemAccess))
            {
                return true;
            }
        }

        return false;
    }
}
