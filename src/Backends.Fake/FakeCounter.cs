using ProcHex.Ports;

namespace ProcHex.Backends.Fake;

/// <summary>
/// An in-victim counter of the fake (issue 18): a 5-byte jump at a function's entry, to a trampoline slot the fake only
/// names, and a count the kernel's execution model increments whenever a thread runs through that jump. Nothing stops.
/// Like the real backend's, its value stays readable after removal, exec, exit and death.
/// </summary>
internal sealed class FakeCounter : ISharedCounter
{
    /// <summary>The bytes the jump takes: <c>jmp rel32</c>.</summary>
    public const int JumpLength = 5;

    /// <summary>The opcode of <c>jmp rel32</c>.</summary>
    public const byte JumpOpcode = 0xE9;

    private long _value;

    public FakeCounter(int ownerPid, ulong entry, ulong trampoline, byte[] displaced)
    {
        OwnerPid = ownerPid;
        Entry = entry;
        Trampoline = trampoline;
        Displaced = displaced;
        Jump = new byte[JumpLength];
        Jump[0] = JumpOpcode;
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(Jump.AsSpan(1), unchecked((int)(trampoline - (entry + JumpLength))));
    }

    /// <inheritdoc/>
    public ulong Entry { get; }

    /// <inheritdoc/>
    public ulong Value => (ulong)Interlocked.Read(ref _value);

    /// <summary>The victim whose address space holds it (a vfork child borrowing that space counts here too).</summary>
    public int OwnerPid { get; }

    /// <summary>Where the jump goes: a slot of the arena the fake places just below the object's text.</summary>
    public ulong Trampoline { get; }

    /// <summary>The original bytes the jump replaced.</summary>
    public byte[] Displaced { get; }

    /// <summary>The jump written at <see cref="Entry"/>.</summary>
    public byte[] Jump { get; }

    /// <summary>Installed and not yet taken out, in an image that still exists.</summary>
    public bool Live { get; set; }

    public void Increment() => Interlocked.Increment(ref _value);

    /// <summary>Whether <paramref name="memory"/> holds this counter's jump at its entry.</summary>
    public bool HeldBy(FakeMemory memory)
    {
        Span<byte> text = stackalloc byte[JumpLength];
        return memory.Read(Entry, text) == JumpLength && text.SequenceEqual(Jump);
    }

    /// <inheritdoc/>
    public override string ToString() => $"counter 0x{Entry:x} of pid {OwnerPid} ({Value}{(Live ? string.Empty : ", out")})";
}
