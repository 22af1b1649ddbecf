using Iced.Intel;

namespace ProcHex.Arch.X64;

/// <summary>
/// The code of one in-victim counting probe (issue 18, zero-stop.md "Shape"): at <see cref="Address"/>,
/// <c>lock inc qword [rip → counter]</c>, the entry's displaced instructions relocated, and <c>jmp rel32</c> back to the
/// first instruction after them. The function's entry gets <see cref="RelocatedEntry.EntryJump"/> to it. At a function
/// entry the flags are dead and the red zone unused, so the increment needs no pushfq and no stack.
/// Pure: it also maps a stopped thread's PC between the patched text and the trampoline, both ways, for install and
/// removal with threads anywhere.
/// </summary>
/// <param name="Address">Where the trampoline runs (a slot in the victim's code arena).</param>
/// <param name="Counter">The 8-byte counter it increments (in memory the tracer shares).</param>
/// <param name="Site">The entry it serves: displaced bytes, their relocated copy at <see cref="Address"/> + <see cref="HeadLength"/>.</param>
/// <param name="Code">The trampoline's bytes.</param>
internal sealed record CounterTrampoline(ulong Address, ulong Counter, RelocatedEntry Site, byte[] Code)
{
    /// <summary>The length of <c>lock inc qword [rip+rel32]</c> (F0 48 FF 05 disp32): where the relocated copy starts.</summary>
    public const int HeadLength = 8;

    /// <summary>Where the <c>jmp</c> back to the function lies in the trampoline.</summary>
    public ulong JumpBackAddress => Address + HeadLength + (ulong)Site.Relocated.Length;

    /// <summary>
    /// Builds the trampoline for the function at <paramref name="entry"/> (its bytes start <paramref name="code"/>; see
    /// <see cref="EntryPatcher.Analyze"/> for <paramref name="functionLength"/>), to run at <paramref name="address"/> and
    /// count into <paramref name="counter"/>. The site or the reach is refused as <see cref="EntryPatcher"/> refuses.
    /// </summary>
    public static TrampolineBuild Build(ulong entry, ReadOnlySpan<byte> code, int? functionLength, ulong address, ulong counter)
    {
        var analysis = EntryPatcher.Analyze(entry, code, address + HeadLength, functionLength);
        if (analysis.Entry is not { } site)
        {
            return new TrampolineBuild(null, analysis.Refusal);
        }

        var head = Encode(Increment(counter), address);
        if (head.Refusal is { } far)
        {
            return new TrampolineBuild(null, far);
        }

        var back = site.JumpBack(address + HeadLength + (ulong)site.Relocated.Length);
        if (back.Refusal is { } unreachable)
        {
            return new TrampolineBuild(null, unreachable);
        }

        byte[] bytes = [.. head.Bytes!, .. site.Relocated, .. back.Bytes!];
        return new TrampolineBuild(new CounterTrampoline(address, counter, site, bytes), null);
    }

    /// <summary>The bytes that go over <see cref="RelocatedEntry.Displaced"/> at the patch address: the jump here.</summary>
    public byte[] EntryJump() => Site.EntryJump(Address).Bytes!;

    /// <summary>
    /// Install: where a thread stopped at <paramref name="pc"/> must continue once the entry jumps here. A PC strictly
    /// inside the displaced bytes, at displaced instruction i, moves to instruction i of the copy (the call already
    /// passed the entry uncounted, and goes on uncounted); null for any other PC (it needs no move), and for a PC
    /// inside the bytes but not at an instruction start, which a stopped thread cannot have (see <see cref="IsInsideDisplaced"/>).
    /// </summary>
    public ulong? IntoTrampoline(ulong pc)
    {
        if (!IsInsideDisplaced(pc))
        {
            return null;
        }

        var offset = (int)(pc - Site.PatchAddress);
        foreach (var instruction in Site.Instructions)
        {
            if (instruction.Original == offset && instruction.Relocated is { } relocated)
            {
                return Address + HeadLength + (ulong)relocated;
            }
        }

        return null;
    }

    /// <summary>
    /// Removal: where a thread stopped at <paramref name="pc"/> inside the trampoline must continue once the entry's
    /// bytes are back. Before the increment: the patch address (the call goes on uncounted, as if it came after the
    /// removal); at relocated instruction i: displaced instruction i; at the jump back: the first instruction after the
    /// displaced bytes. Null for a PC outside the trampoline.
    /// </summary>
    public ulong? OutOfTrampoline(ulong pc)
    {
        if (pc < Address || pc >= Address + (ulong)Code.Length)
        {
            return null;
        }

        if (pc < Address + HeadLength)
        {
            return Site.PatchAddress;
        }

        if (pc >= JumpBackAddress)
        {
            return Site.ResumeAddress;
        }

        var offset = (int)(pc - Address - HeadLength);
        foreach (var instruction in Site.Instructions)
        {
            if (instruction.Relocated == offset)
            {
                return Site.PatchAddress + (ulong)instruction.Original;
            }
        }

        return null;
    }

    /// <summary>Whether <paramref name="pc"/> lies strictly inside the displaced bytes (the patch address itself runs the jump).</summary>
    public bool IsInsideDisplaced(ulong pc) => pc > Site.PatchAddress && pc < Site.ResumeAddress;

    private static Instruction Increment(ulong counter)
    {
        var increment = Instruction.Create(Iced.Intel.Code.Inc_rm64, new MemoryOperand(Register.RIP, (long)counter));
        increment.HasLockPrefix = true;
        return increment;
    }

    private static PatchEncoding Encode(in Instruction instruction, ulong at)
    {
        var writer = new EntryPatcher.ByteWriter();
        var encoder = Encoder.Create(64, writer);
        return encoder.TryEncode(instruction, at, out var length, out var error) && length == HeadLength
            ? new PatchEncoding(writer.ToArray(), null)
            : new PatchEncoding(null, new Refused(SiteRefusal.OutOfReach, $"the counter at 0x{instruction.MemoryDisplacement64:x} cannot be reached from 0x{at:x}: {error ?? $"{length} bytes"}"));
    }
}

/// <summary>A trampoline build: exactly one of <paramref name="Trampoline"/> and <paramref name="Refusal"/> is set.</summary>
internal readonly record struct TrampolineBuild(CounterTrampoline? Trampoline, Refused? Refusal);
