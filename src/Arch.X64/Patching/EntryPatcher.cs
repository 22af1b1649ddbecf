using Iced.Intel;

namespace ProcHex.Arch.X64;

/// <summary>Why a function entry cannot take a jump to a trampoline (the probe then keeps the int3 path).</summary>
internal enum SiteRefusal
{
    /// <summary>The function (or the code given) ends before whole instructions cover a <c>jmp rel32</c>.</summary>
    TooShort,

    /// <summary>The bytes do not decode to a valid instruction.</summary>
    Undecodable,

    /// <summary>A call, ret, jump, conditional branch, loop or indirect branch among the displaced instructions.</summary>
    ControlFlow,

    /// <summary>syscall, sysenter, int, int3, ud0/1/2 or hlt among the displaced instructions.</summary>
    Trap,

    /// <summary>xbegin, xabort or xend among the displaced instructions.</summary>
    Transactional,

    /// <summary>A direct branch in the function lands strictly inside the displaced bytes.</summary>
    BranchIntoDisplaced,

    /// <summary>Iced's BlockEncoder could not relocate the instructions (a RIP-relative operand out of reach...).</summary>
    RelocationFailed,

    /// <summary>A <c>jmp rel32</c> cannot reach: the distance exceeds ±2 GiB.</summary>
    OutOfReach,
}

/// <summary>A refusal with the reason as a kind and as text a user can read.</summary>
internal sealed record Refused(SiteRefusal Reason, string Detail);

/// <summary>One displaced instruction: its offset from the patch address and, in the relocated copy, its offset there.</summary>
/// <param name="Original">Offset from <see cref="RelocatedEntry.PatchAddress"/> in the original text.</param>
/// <param name="Relocated">Offset from <see cref="RelocatedEntry.RelocatedAddress"/> in the copy; null where the
/// encoder rewrote the instruction into another form (never for the instructions the patcher accepts today).</param>
internal readonly record struct DisplacedInstruction(int Original, int? Relocated);

/// <summary>
/// A function entry that can be patched: the instructions at <see cref="PatchAddress"/> (past a leading endbr64) that a
/// <c>jmp rel32</c> displaces, and their copy relocated to run at <see cref="RelocatedAddress"/>.
/// </summary>
/// <param name="Entry">The function's address.</param>
/// <param name="PatchAddress">Where the jump goes: <see cref="Entry"/>, or past its endbr64.</param>
/// <param name="Displaced">The original bytes the jump and its padding replace (whole instructions, at least 5 bytes).</param>
/// <param name="RelocatedAddress">Where <see cref="Relocated"/> must run.</param>
/// <param name="Relocated">The displaced instructions re-encoded for <see cref="RelocatedAddress"/>.</param>
/// <param name="Instructions">Each displaced instruction's offset in the original and in the copy, in order: the map that
/// moves a thread stopped inside the displaced bytes to the same place in the copy, and back.</param>
internal sealed record RelocatedEntry(
    ulong Entry,
    ulong PatchAddress,
    byte[] Displaced,
    ulong RelocatedAddress,
    byte[] Relocated,
    IReadOnlyList<DisplacedInstruction> Instructions)
{
    /// <summary>Where the copy must jump back to: the first instruction after the displaced bytes.</summary>
    public ulong ResumeAddress => PatchAddress + (ulong)Displaced.Length;

    /// <summary>
    /// The bytes that replace <see cref="Displaced"/>: <c>jmp rel32</c> to <paramref name="trampoline"/>, then one-byte
    /// nops to the displaced length (no thread runs them: one inside the range is moved into the copy at install).
    /// </summary>
    public PatchEncoding EntryJump(ulong trampoline)
    {
        var jump = EntryPatcher.EncodeJump(PatchAddress, trampoline);
        if (jump.Bytes is not { } bytes)
        {
            return jump;
        }

        var patch = new byte[Displaced.Length];
        Array.Fill(patch, Nop);
        bytes.CopyTo(patch, 0);
        return new PatchEncoding(patch, null);
    }

    /// <summary>The <c>jmp rel32</c> placed at <paramref name="at"/> (after the copy) that returns to <see cref="ResumeAddress"/>.</summary>
    public PatchEncoding JumpBack(ulong at) => EntryPatcher.EncodeJump(at, ResumeAddress);

    private const byte Nop = 0x90;
}

/// <summary>Encoded bytes, or why they could not be encoded; exactly one is set.</summary>
internal readonly record struct PatchEncoding(byte[]? Bytes, Refused? Refusal);

/// <summary>A site analysis: exactly one of <paramref name="Entry"/> and <paramref name="Refusal"/> is set.</summary>
internal readonly record struct SiteAnalysis(RelocatedEntry? Entry, Refused? Refusal);

/// <summary>
/// Site analysis for in-victim probes (issue 18, docs in zero-stop.md): decides whether a function's entry can take a
/// <c>jmp rel32</c> to a trampoline and prepares everything that needs: which whole instructions the jump displaces
/// (past a leading endbr64, which stays so IBT code keeps its landing pad), their copy relocated by Iced's
/// <see cref="BlockEncoder"/> (RIP-relative operands re-targeted), the offset map for moving threads, and the jumps.
/// Pure: it reads the bytes it is given and nothing else. Unsafe sites are refused with a <see cref="Refused"/>,
/// never an exception: a call (its return address would point into the trampoline), ret, jumps and branches, traps
/// and system calls, transactions, a branch in the function into the displaced bytes, a relocation Iced refuses, a
/// jump out of reach.
/// </summary>
internal static class EntryPatcher
{
    /// <summary>The length of <c>jmp rel32</c>, the least a patch displaces.</summary>
    public const int JumpLength = 5;

    /// <summary>
    /// Analyses the entry at <paramref name="entry"/>, whose bytes start <paramref name="code"/>, for a copy at
    /// <paramref name="relocatedAddress"/>. <paramref name="functionLength"/> (the symbol's size, when known) bounds
    /// the displaced bytes and the code read. Every direct branch in the code given (a linear sweep from the entry) is
    /// checked against the displaced range, so pass the whole function (<c>[st_value, st_value+st_size)</c>) to check
    /// all of it; a branch to the patch address itself is fine (it lands on the jump).
    /// </summary>
    public static SiteAnalysis Analyze(ulong entry, ReadOnlySpan<byte> code, ulong relocatedAddress, int? functionLength = null)
    {
        if (functionLength is { } length && length < code.Length)
        {
            code = code[..length];
        }

        var reader = new ByteArrayCodeReader(code.ToArray());
        var decoder = Decoder.Create(64, reader);
        decoder.IP = entry;
        var first = decoder.Decode();
        var patchAddress = entry;
        var instructions = new List<Instruction>();
        if (first.Code == Code.Endbr64)
        {
            patchAddress = first.NextIP;
        }
        else
        {
            decoder.IP = entry;
            reader.Position = 0;
        }

        var displaced = 0;
        while (displaced < JumpLength)
        {
            var offset = (int)(decoder.IP - entry);
            if (offset >= code.Length)
            {
                return Refuse(SiteRefusal.TooShort, $"0x{entry:x}: the function ends {displaced} bytes after 0x{patchAddress:x}, before a {JumpLength}-byte jump fits");
            }

            var instruction = decoder.Decode();
            if (instruction.IsInvalid)
            {
                return Refuse(decoder.LastError == DecoderError.NoMoreBytes ? SiteRefusal.TooShort : SiteRefusal.Undecodable,
                    $"0x{instruction.IP:x}: {(decoder.LastError == DecoderError.NoMoreBytes ? "the code ends inside an instruction" : "not a valid instruction")}");
            }

            if (Unsafe(instruction) is { } refusal)
            {
                return new SiteAnalysis(null, refusal);
            }

            instructions.Add(instruction);
            displaced += instruction.Length;
        }

        var end = patchAddress + (ulong)displaced;
        if (BranchTargets.Scan(entry, code).Inside(patchAddress, end) is { } branch)
        {
            return Refuse(SiteRefusal.BranchIntoDisplaced, $"the branch at 0x{branch.From:x} lands at 0x{branch.Target:x}, inside the displaced bytes 0x{patchAddress:x}..0x{end:x}");
        }

        var writer = new ByteWriter();
        if (!BlockEncoder.TryEncode(64, new InstructionBlock(writer, instructions, relocatedAddress), out var error, out var result, BlockEncoderOptions.ReturnNewInstructionOffsets))
        {
            return Refuse(SiteRefusal.RelocationFailed, $"0x{patchAddress:x}: the displaced instructions cannot run at 0x{relocatedAddress:x}: {error}");
        }

        var map = new DisplacedInstruction[instructions.Count];
        for (var i = 0; i < instructions.Count; i++)
        {
            var moved = result.NewInstructionOffsets[i];
            map[i] = new DisplacedInstruction((int)(instructions[i].IP - patchAddress), moved == uint.MaxValue ? null : (int)moved);
        }

        var start = (int)(patchAddress - entry);
        return new SiteAnalysis(new RelocatedEntry(entry, patchAddress, code.Slice(start, displaced).ToArray(), relocatedAddress, writer.ToArray(), map), null);
    }

    /// <summary><c>jmp rel32</c> at <paramref name="from"/> to <paramref name="to"/>; refused beyond ±2 GiB.</summary>
    public static PatchEncoding EncodeJump(ulong from, ulong to)
    {
        var distance = (long)(to - (from + JumpLength));
        if (distance is < int.MinValue or > int.MaxValue)
        {
            return new PatchEncoding(null, new Refused(SiteRefusal.OutOfReach, $"a jump from 0x{from:x} to 0x{to:x} is {distance:+#;-#} bytes: beyond the ±2 GiB of rel32"));
        }

        var writer = new ByteWriter();
        var encoder = Encoder.Create(64, writer);
        if (!encoder.TryEncode(Instruction.CreateBranch(Code.Jmp_rel32_64, to), from, out _, out var error))
        {
            return new PatchEncoding(null, new Refused(SiteRefusal.OutOfReach, $"a jump from 0x{from:x} to 0x{to:x}: {error}"));
        }

        return new PatchEncoding(writer.ToArray(), null);
    }

    private static Refused? Unsafe(in Instruction instruction)
    {
        var what = $"0x{instruction.IP:x}: {instruction}";
        if (instruction.Mnemonic is Mnemonic.Syscall or Mnemonic.Sysenter or Mnemonic.Int or Mnemonic.Int1 or Mnemonic.Int3 or Mnemonic.Into
            or Mnemonic.Ud0 or Mnemonic.Ud1 or Mnemonic.Ud2 or Mnemonic.Hlt)
        {
            return new Refused(SiteRefusal.Trap, $"{what} traps or enters the kernel");
        }

        return instruction.FlowControl switch
        {
            FlowControl.Next => null,
            FlowControl.XbeginXabortXend => new Refused(SiteRefusal.Transactional, $"{what} is transactional"),
            FlowControl.Interrupt or FlowControl.Exception => new Refused(SiteRefusal.Trap, $"{what} traps"),
            FlowControl.Call or FlowControl.IndirectCall => new Refused(SiteRefusal.ControlFlow, $"{what} is a call: its return address would point into the trampoline"),
            _ => new Refused(SiteRefusal.ControlFlow, $"{what} changes the control flow"),
        };
    }

    private static SiteAnalysis Refuse(SiteRefusal reason, string detail) => new(null, new Refused(reason, detail));

    /// <summary>Collects what an Iced encoder writes.</summary>
    internal sealed class ByteWriter : CodeWriter
    {
        private readonly List<byte> _bytes = [];

        public override void WriteByte(byte value) => _bytes.Add(value);

        public byte[] ToArray() => [.. _bytes];
    }
}
