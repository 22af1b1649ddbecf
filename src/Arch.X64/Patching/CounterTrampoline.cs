using Iced.Intel;

namespace ProcHex.Arch.X64;

/// <summary>
/// The code of one in-victim counting probe (issue 18, zero-stop.md "Shape"): at <see cref="Address"/>, the head
/// (<see cref="HeadLength"/> bytes) increments this thread's slot of the counter with a locked add, then the entry's
/// displaced instructions run relocated, then <c>jmp rel32</c> goes back to the first instruction after them; the
/// counter's address follows as data. The function's entry gets <see cref="RelocatedEntry.EntryJump"/> to it.
/// <para>
/// Per-thread slots: one counter line that every thread increments moves between the cores on every call (measured:
/// 4 threads on 2 cores counted 4× slower than one). The head picks one of <see cref="ThreadSlots"/> slots, each in
/// its own <see cref="ThreadSlotBytes"/> region, by a multiplicative (Fibonacci) hash of the stack pointer's megabyte
/// (<see cref="SlotOffset"/>): threads' stacks lie one or more megabytes apart (glibc's default is 8 MiB, Rust's 2, a
/// JVM's 1), and the hash spreads any such stride, where plain bits of the address would fold an 8 MiB stride onto a
/// quarter of the slots. A call's slot depends only on where its stack lies. Two threads that share a slot stay exact
/// (the add is locked); they only share a line again. The reader sums the slots.
/// </para>
/// <para>
/// At a function entry the flags are dead and the 128-byte red zone below the stack pointer is the callee's and unused,
/// so the head saves rax at [rsp-8] (a signal handler's frame starts below the red zone) and clobbers only the flags.
/// Pure: it also maps a stopped thread's PC between the patched text and the trampoline, both ways, for install and
/// removal with threads anywhere.
/// </para>
/// </summary>
/// <param name="Address">Where the trampoline runs (a slot in the victim's code arena).</param>
/// <param name="Counter">The counter's slot for the first thread slot; slot t lies <c>t * ThreadSlotBytes</c> above it.</param>
/// <param name="Site">The entry it serves: displaced bytes, their relocated copy at <see cref="Address"/> + <see cref="HeadLength"/>.</param>
/// <param name="Code">The trampoline's bytes: head, relocated copy, jump back, int3 padding, the counter's address.</param>
internal sealed record CounterTrampoline(ulong Address, ulong Counter, RelocatedEntry Site, byte[] Code)
{
    /// <summary>How many slots a counter has; a power of two.</summary>
    public const int ThreadSlots = 32;

    /// <summary>The distance between a counter's slots: a multiple of the cache line, so slots share no line.</summary>
    public const int ThreadSlotBytes = 8192;

    /// <summary>The stack pointer's bits from here up (its megabyte) are hashed to pick the slot.</summary>
    public const int StackShift = 20;

    /// <summary>The hash's multiplier: 2^32 divided by the golden ratio, odd.</summary>
    public const uint HashMultiplier = 0x9E37_79B1;

    /// <summary>
    /// The head's bytes: <c>mov [rsp-8],rax; mov rax,rsp; shr rax,20; imul eax,eax,0x9e3779b1; shr eax,27;
    /// shl eax,13; add rax,[rip→counter address]; lock inc qword [rax]; mov rax,[rsp-8]</c>. The relocated copy
    /// starts here.
    /// </summary>
    public const int HeadLength = 40;

    /// <summary>Where the head has saved rax (from the first instruction on) until the last restores it.</summary>
    private const int SavedRaxFrom = 5;

    /// <summary>The offset of the head's instruction after the increment: a thread there has been counted.</summary>
    public const int CountedFrom = 35;

    /// <summary>The offsets of the head's instructions.</summary>
    public static IReadOnlyList<int> HeadInstructions { get; } = [0, 5, 8, 12, 18, 21, 24, 31, 35];

    /// <summary>Where the <c>jmp</c> back to the function lies in the trampoline.</summary>
    public ulong JumpBackAddress => Address + HeadLength + (ulong)Site.Relocated.Length;

    /// <summary>Where the code ends (after the jump back); padding and the counter's address follow.</summary>
    public ulong CodeEnd => JumpBackAddress + EntryPatcher.JumpLength;

    /// <summary>
    /// Builds the trampoline for the function at <paramref name="entry"/> (its bytes start <paramref name="code"/>; see
    /// <see cref="EntryPatcher.Analyze"/> for <paramref name="functionLength"/>), to run at <paramref name="address"/> and
    /// count into the slots from <paramref name="counter"/> (anywhere: the head loads its address). The site or the
    /// reach is refused as <see cref="EntryPatcher"/> refuses.
    /// </summary>
    public static TrampolineBuild Build(ulong entry, ReadOnlySpan<byte> code, int? functionLength, ulong address, ulong counter)
    {
        var analysis = EntryPatcher.Analyze(entry, code, address + HeadLength, functionLength);
        if (analysis.Entry is not { } site)
        {
            return new TrampolineBuild(null, analysis.Refusal);
        }

        var jumpBack = address + HeadLength + (ulong)site.Relocated.Length;
        var back = site.JumpBack(jumpBack);
        if (back.Refusal is { } unreachable)
        {
            return new TrampolineBuild(null, unreachable);
        }

        var counterAddress = (jumpBack + EntryPatcher.JumpLength + 7) & ~7UL;
        var bytes = new byte[counterAddress + 8 - address];
        bytes.AsSpan().Fill(X64Trap.Int3);
        Head(address, counterAddress).CopyTo(bytes, 0);
        site.Relocated.CopyTo(bytes, HeadLength);
        back.Bytes!.CopyTo(bytes, (int)(jumpBack - address));
        BitConverter.TryWriteBytes(bytes.AsSpan((int)(counterAddress - address)), counter);
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
    /// bytes are back. In the head: the patch address (the call goes on uncounted, as if it came after the removal, or
    /// counted once if the increment ran), with rax reloaded from [rsp-8] if the head had saved it; at relocated
    /// instruction i: displaced instruction i; at the jump back: the first instruction after the displaced bytes.
    /// Null for a PC outside the trampoline's code.
    /// </summary>
    public TrampolineExit? OutOfTrampoline(ulong pc)
    {
        if (pc < Address || pc >= CodeEnd)
        {
            return null;
        }

        if (pc < Address + HeadLength)
        {
            return new TrampolineExit(Site.PatchAddress, ReloadRax: pc >= Address + SavedRaxFrom);
        }

        if (pc >= JumpBackAddress)
        {
            return new TrampolineExit(Site.ResumeAddress, ReloadRax: false);
        }

        var offset = (int)(pc - Address - HeadLength);
        foreach (var instruction in Site.Instructions)
        {
            if (instruction.Relocated == offset)
            {
                return new TrampolineExit(Site.PatchAddress + (ulong)instruction.Original, ReloadRax: false);
            }
        }

        return null;
    }

    /// <summary>Whether <paramref name="pc"/> lies strictly inside the displaced bytes (the patch address itself runs the jump).</summary>
    public bool IsInsideDisplaced(ulong pc) => pc > Site.PatchAddress && pc < Site.ResumeAddress;

    /// <summary>
    /// The offset of the slot a call counts in when its stack pointer is <paramref name="rsp"/>, as the head computes
    /// it: the top 5 bits of the 32-bit product of the stack's megabyte and <see cref="HashMultiplier"/>, times
    /// <see cref="ThreadSlotBytes"/>.
    /// </summary>
    public static ulong SlotOffset(ulong rsp) => (ulong)(((uint)(rsp >> StackShift) * HashMultiplier) >> (32 - SlotBits)) * ThreadSlotBytes;

    private const int SlotBits = 5; // log2(ThreadSlots)

    private static byte[] Head(ulong address, ulong counterAddress)
    {
        const int slotShift = 13; // log2(ThreadSlotBytes)
        var savedRax = new MemoryOperand(Register.RSP, -8);
        Instruction[] head =
        [
            Instruction.Create(Iced.Intel.Code.Mov_rm64_r64, savedRax, Register.RAX),
            Instruction.Create(Iced.Intel.Code.Mov_rm64_r64, Register.RAX, Register.RSP),
            Instruction.Create(Iced.Intel.Code.Shr_rm64_imm8, Register.RAX, StackShift),
            Instruction.Create(Iced.Intel.Code.Imul_r32_rm32_imm32, Register.EAX, Register.EAX, unchecked((int)HashMultiplier)),
            Instruction.Create(Iced.Intel.Code.Shr_rm32_imm8, Register.EAX, 32 - SlotBits),
            Instruction.Create(Iced.Intel.Code.Shl_rm32_imm8, Register.EAX, slotShift),
            Instruction.Create(Iced.Intel.Code.Add_r64_rm64, Register.RAX, new MemoryOperand(Register.RIP, (long)counterAddress)),
            Lock(Instruction.Create(Iced.Intel.Code.Inc_rm64, new MemoryOperand(Register.RAX))),
            Instruction.Create(Iced.Intel.Code.Mov_r64_rm64, Register.RAX, savedRax),
        ];
        var writer = new EntryPatcher.ByteWriter();
        var encoder = Encoder.Create(64, writer);
        var at = address;
        for (var i = 0; i < head.Length; i++)
        {
            if ((int)(at - address) != HeadInstructions[i] || !encoder.TryEncode(head[i], at, out var length, out var error))
            {
                throw new InvalidOperationException($"the counting head's instruction {i} ({head[i]}) did not encode at offset {HeadInstructions[i]}");
            }

            at += (ulong)length;
        }

        var bytes = writer.ToArray();
        return bytes.Length == HeadLength ? bytes : throw new InvalidOperationException($"the counting head took {bytes.Length} bytes, not {HeadLength}");
    }

    private static Instruction Lock(Instruction instruction)
    {
        instruction.HasLockPrefix = true;
        return instruction;
    }
}

/// <summary>
/// Where a thread stopped in a removed trampoline continues: <paramref name="Pc"/>, after its rax is reloaded from
/// [rsp-8] if <paramref name="ReloadRax"/> (the head had saved it there and clobbered it).
/// </summary>
internal readonly record struct TrampolineExit(ulong Pc, bool ReloadRax);

/// <summary>A trampoline build: exactly one of <paramref name="Trampoline"/> and <paramref name="Refusal"/> is set.</summary>
internal readonly record struct TrampolineBuild(CounterTrampoline? Trampoline, Refused? Refusal);
