using System.Buffers.Binary;
using System.Numerics;
using Iced.Intel;

namespace ProcHex.Arch.X64;

/// <summary>A memory store an emulated instruction makes: the low <paramref name="Size"/> bytes of <paramref name="Value"/>.</summary>
internal readonly record struct MemoryWrite(ulong Address, ulong Value, int Size)
{
    /// <summary>The bytes stored, little-endian, written into <paramref name="buffer"/> (at least 8 bytes long).</summary>
    public ReadOnlySpan<byte> Bytes(Span<byte> buffer)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(buffer, Value);
        return buffer[..Size];
    }
}

/// <summary>
/// Executes, in the tracer, the instructions that open functions, so a breakpoint hit costs one stop instead of
/// a restore-step-replant round trip with the whole victim stopped (what the kernel's uprobes do). Only
/// instructions whose every effect is modelled exactly are accepted: register moves, pushes, stores of a
/// register to the stack, lea (any 64-bit base and index, or rip-relative), add/sub of an immediate (flags computed), the zeroing xor, test,
/// endbr64 and the nops. Anything else returns false and is stepped out of line.
/// </summary>
/// <remarks>
/// <para><b>Threads and locks.</b> The emulator is pure: it reads the registers and code it is given and returns the
/// state after the instruction, touching no victim and taking no lock. Its only state is a decoder per calling thread
/// ([ThreadStatic]), so callers never share one. Its callers (the Linux and FreeBSD step-over) run on the backend's
/// owner thread inside the resume that answers the hit, while the hitting thread is in its ptrace stop; the owner alone
/// writes the victim (the store, then the registers), so nothing else can change the thread between the decode and
/// the write.</para>
/// <para><b>When the effect cannot be applied.</b> The caller makes the store first and sets the registers second, so
/// a refused store leaves the thread as it stopped; the caller then steps that hit out of line. It never resumes the
/// thread on its trap, which would hit it again forever.</para>
/// <para><b>Registers.</b> It works on the neutral <see cref="X64Registers"/>; each backend converts its own layout
/// (Linux's <c>user_regs_struct</c>, FreeBSD's <c>struct reg</c>) to it and back in its <c>Registers.cs</c>.</para>
/// </remarks>
internal static class InstructionEmulator
{
    private const ulong CF = 1 << 0, PF = 1 << 2, AF = 1 << 4, ZF = 1 << 6, SF = 1 << 7, OF = 1 << 11;
    private const ulong ArithmeticFlags = CF | PF | AF | ZF | SF | OF;

    /// <summary>
    /// Emulates the instruction in <paramref name="code"/> (the original bytes at <c>regs.Rip</c>). On success
    /// <paramref name="regs"/> holds the state after it and <paramref name="write"/> the store it made, if any.
    /// </summary>
    public static bool TryEmulate(ref X64Registers regs, ReadOnlySpan<byte> code, out MemoryWrite? write)
    {
        write = null;
        var instruction = Decode(regs.Rip, code);
        if (instruction.IsInvalid || instruction.Length > code.Length || instruction.HasLockPrefix || instruction.HasRepPrefix || instruction.HasRepnePrefix)
        {
            return false;
        }

        var next = instruction.NextIP;
        var state = regs;
        switch (instruction.Code)
        {
            case Code.Endbr64:
            case Code.Nopd:
            case Code.Nopq:
            case Code.Nopw:
            case Code.Nop_rm16:
            case Code.Nop_rm32:
            case Code.Nop_rm64:
                break;

            case Code.Push_r64:
                {
                    var value = Get(state, instruction.Op0Register);
                    state = state with { Rsp = state.Rsp - 8 };
                    write = new MemoryWrite(state.Rsp, value, 8);
                    break;
                }

            case Code.Mov_rm64_r64 or Code.Mov_r64_rm64 or Code.Mov_rm32_r32 or Code.Mov_r32_rm32:
                {
                    var wide = instruction.Code is Code.Mov_rm64_r64 or Code.Mov_r64_rm64;
                    if (instruction.Op0Kind == OpKind.Register && instruction.Op1Kind == OpKind.Register)
                    {
                        var value = Get(state, instruction.Op1Register);
                        state = Set(state, instruction.Op0Register, wide ? value : (uint)value);
                    }
                    else if (instruction.Op0Kind == OpKind.Memory && TryStackAddress(state, instruction, out var address))
                    {
                        var value = Get(state, instruction.Op1Register);
                        write = new MemoryWrite(address, value, wide ? 8 : 4);
                    }
                    else
                    {
                        return false;
                    }

                    break;
                }

            case Code.Lea_r64_m or Code.Lea_r32_m:
                {
                    // Address arithmetic only: nothing is read, no flag changes. A 32-bit destination is zero-extended.
                    if (!TryEffectiveAddress(state, instruction, out var address))
                    {
                        return false;
                    }

                    state = Set(state, instruction.Op0Register, instruction.Code == Code.Lea_r64_m ? address : (uint)address);
                    break;
                }

            case Code.Sub_rm64_imm8 or Code.Sub_rm64_imm32 or Code.Add_rm64_imm8 or Code.Add_rm64_imm32:
                {
                    if (instruction.Op0Kind != OpKind.Register)
                    {
                        return false;
                    }

                    var a = Get(state, instruction.Op0Register);
                    var b = instruction.GetImmediate(1);
                    var subtract = instruction.Mnemonic == Mnemonic.Sub;
                    var result = subtract ? a - b : a + b;
                    var carry = subtract ? a < b : result < a;
                    var overflow = subtract ? ((a ^ b) & (a ^ result)) >> 63 != 0 : (~(a ^ b) & (a ^ result)) >> 63 != 0;
                    var adjust = ((a ^ b ^ result) & 0x10) != 0;
                    state = state with { Rflags = Flags(state.Rflags, result, 64, carry, overflow, adjust) };
                    state = Set(state, instruction.Op0Register, result);
                    break;
                }

            case Code.Xor_rm32_r32 or Code.Xor_r32_rm32:
                {
                    // Only the zeroing idiom: its flags are fully defined except AF, which the CPU clears.
                    if (instruction.Op0Kind != OpKind.Register || instruction.Op1Kind != OpKind.Register || instruction.Op0Register != instruction.Op1Register)
                    {
                        return false;
                    }

                    state = Set(state, instruction.Op0Register, 0);
                    state = state with { Rflags = Flags(state.Rflags, 0, 32, carry: false, overflow: false, adjust: false) };
                    break;
                }

            case Code.Test_rm64_r64 or Code.Test_rm32_r32:
                {
                    if (instruction.Op0Kind != OpKind.Register || instruction.Op1Kind != OpKind.Register)
                    {
                        return false;
                    }

                    var bits = instruction.Code == Code.Test_rm64_r64 ? 64 : 32;
                    var result = Get(state, instruction.Op0Register) & Get(state, instruction.Op1Register);
                    if (bits == 32)
                    {
                        result = (uint)result;
                    }

                    state = state with { Rflags = Flags(state.Rflags, result, bits, carry: false, overflow: false, adjust: false) };
                    break;
                }

            default:
                return false;
        }

        state = state with { Rip = next };
        regs = state;
        return true;
    }

    private static ulong Flags(ulong eflags, ulong result, int bits, bool carry, bool overflow, bool adjust)
    {
        var f = eflags & ~ArithmeticFlags;
        if (carry)
        {
            f |= CF;
        }

        if (BitOperations.PopCount(result & 0xff) % 2 == 0)
        {
            f |= PF;
        }

        if (adjust)
        {
            f |= AF;
        }

        if (result == 0)
        {
            f |= ZF;
        }

        if (((result >> (bits - 1)) & 1) != 0)
        {
            f |= SF;
        }

        if (overflow)
        {
            f |= OF;
        }

        return f;
    }

    /// <summary>[rsp+disp] or [rbp+disp]: the only memory operands emulated, never rip-relative, never indexed.</summary>
    private static bool TryStackAddress(in X64Registers state, in Instruction instruction, out ulong address)
    {
        address = 0;
        if (instruction.MemoryIndex != Register.None || instruction.SegmentPrefix != Register.None
            || instruction.MemoryBase is not (Register.RSP or Register.RBP))
        {
            return false;
        }

        address = Get(state, instruction.MemoryBase) + instruction.MemoryDisplacement64;
        return true;
    }

    /// <summary>
    /// base + index × scale + displacement with 64-bit registers, or rip-relative (Iced gives the absolute address when
    /// decoding at the instruction's own address); refused with a segment prefix or 32-bit address registers.
    /// </summary>
    private static bool TryEffectiveAddress(in X64Registers state, in Instruction instruction, out ulong address)
    {
        address = instruction.MemoryDisplacement64;
        if (instruction.SegmentPrefix != Register.None
            || (instruction.MemoryBase is not (Register.None or Register.RIP) && !instruction.MemoryBase.IsGPR64())
            || (instruction.MemoryIndex != Register.None && !instruction.MemoryIndex.IsGPR64()))
        {
            return false;
        }

        if (instruction.MemoryBase.IsGPR64())
        {
            address += Get(state, instruction.MemoryBase);
        }

        if (instruction.MemoryIndex != Register.None)
        {
            address += Get(state, instruction.MemoryIndex) * (ulong)instruction.MemoryIndexScale;
        }

        return true;
    }

    private static ulong Get(in X64Registers r, Register register) => register.GetFullRegister() switch
    {
        Register.RAX => r.Rax,
        Register.RBX => r.Rbx,
        Register.RCX => r.Rcx,
        Register.RDX => r.Rdx,
        Register.RSI => r.Rsi,
        Register.RDI => r.Rdi,
        Register.RBP => r.Rbp,
        Register.RSP => r.Rsp,
        Register.R8 => r.R8,
        Register.R9 => r.R9,
        Register.R10 => r.R10,
        Register.R11 => r.R11,
        Register.R12 => r.R12,
        Register.R13 => r.R13,
        Register.R14 => r.R14,
        Register.R15 => r.R15,
        var full => throw new ArgumentOutOfRangeException(nameof(register), full, "not a general-purpose register"),
    };

    private static X64Registers Set(in X64Registers r, Register register, ulong value) => register.GetFullRegister() switch
    {
        Register.RAX => r with { Rax = value },
        Register.RBX => r with { Rbx = value },
        Register.RCX => r with { Rcx = value },
        Register.RDX => r with { Rdx = value },
        Register.RSI => r with { Rsi = value },
        Register.RDI => r with { Rdi = value },
        Register.RBP => r with { Rbp = value },
        Register.RSP => r with { Rsp = value },
        Register.R8 => r with { R8 = value },
        Register.R9 => r with { R9 = value },
        Register.R10 => r with { R10 = value },
        Register.R11 => r with { R11 = value },
        Register.R12 => r with { R12 = value },
        Register.R13 => r with { R13 = value },
        Register.R14 => r with { R14 = value },
        Register.R15 => r with { R15 = value },
        var full => throw new ArgumentOutOfRangeException(nameof(register), full, "not a general-purpose register"),
    };

    // One decoder per thread over a reusable 16-byte window: a hit on the hot path allocates nothing.
    [ThreadStatic]
    private static (Decoder Decoder, WindowReader Window)? t_decoder;

    private static Instruction Decode(ulong ip, ReadOnlySpan<byte> code)
    {
        if (t_decoder is not { } cached)
        {
            var window = new WindowReader();
            cached = (Decoder.Create(64, window), window);
            t_decoder = cached;
        }

        cached.Window.Load(code);
        cached.Decoder.IP = ip;
        cached.Decoder.Decode(out var instruction);
        return instruction;
    }

    /// <summary>Feeds the decoder the bytes of one instruction window; -1 past its end, as Iced expects.</summary>
    private sealed class WindowReader : CodeReader
    {
        private readonly byte[] _bytes = new byte[16];
        private int _length;
        private int _position;

        public void Load(ReadOnlySpan<byte> code)
        {
            _length = Math.Min(code.Length, _bytes.Length);
            code[.._length].CopyTo(_bytes);
            _position = 0;
        }

        public override int ReadByte() => _position < _length ? _bytes[_position++] : -1;
    }
}
