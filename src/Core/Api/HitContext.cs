using System.Buffers.Binary;
using System.Text;
using ProcHex.Ports;

namespace ProcHex;

/// <summary>
/// A read-only view of the thread that hit a breakpoint, valid only while the handler that received it runs: its
/// registers, its System V integer arguments, the return address at a function's entry, and the victim's memory.
/// </summary>
/// <remarks>
/// Nothing is read until a member is used: a handler that only counts costs no register read and no allocation.
/// The registers are read once per handler call and then served from that copy. Once the handler returns (or a later
/// hit reuses the scope), every member throws <see cref="HitContextExpiredException"/>: the thread has run on, and its
/// registers would describe a moment that is gone. Members are meant for the handler's own thread (the control loop).
/// </remarks>
public readonly struct HitContext : IEquatable<HitContext>
{
    private readonly HitScope? _scope;
    private readonly long _generation;

    internal HitContext(HitScope scope, long generation)
    {
        _scope = scope;
        _generation = generation;
    }

    /// <summary>True while the handler that received this context runs.</summary>
    public bool IsValid => _scope is not null && _scope.IsCurrent(_generation);

    /// <summary>The stopped thread's registers; <see cref="X64Registers.Rip"/> is the breakpoint's address.</summary>
    /// <exception cref="HitContextExpiredException">The handler has returned.</exception>
    /// <exception cref="ProcHexException">The OS would not show the registers (the message says why).</exception>
    public X64Registers Registers => Scope.Registers();

    /// <summary>
    /// Integer argument <paramref name="index"/> (0 to 5: rdi, rsi, rdx, rcx, r8, r9), meaningful when the breakpoint
    /// is on a function's first instruction.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Not 0 to 5.</exception>
    /// <exception cref="HitContextExpiredException">The handler has returned.</exception>
    /// <exception cref="ProcHexException">The OS would not show the registers.</exception>
    public ulong Argument(int index) => Registers.IntegerArgument(index);

    /// <summary>
    /// The 8 bytes at rsp: the return address when the breakpoint is on a function's first instruction (before it
    /// pushes anything), the caller's next instruction.
    /// </summary>
    /// <exception cref="HitContextExpiredException">The handler has returned.</exception>
    /// <exception cref="ProcHexException">The stack could not be read.</exception>
    public ulong ReturnAddress
    {
        get
        {
            var rsp = Registers.Rsp;
            Span<byte> word = stackalloc byte[8];
            if (ReadMemory(rsp, word) != word.Length)
            {
                throw new ProcHexException($"pid {Scope.Pid}: the return address at rsp 0x{rsp:x} cannot be read");
            }

            return BinaryPrimitives.ReadUInt64LittleEndian(word);
        }
    }

    /// <summary>Reads victim memory; returns the number of bytes read (short on an unmapped tail).</summary>
    /// <exception cref="HitContextExpiredException">The handler has returned.</exception>
    /// <exception cref="ProcHexException">The OS refused the read (the message says why).</exception>
    public int ReadMemory(ulong address, Span<byte> destination) => Scope.ReadMemory(address, destination);

    /// <summary>
    /// Reads a NUL-terminated UTF-8 string (a <c>char *</c> argument) of at most <paramref name="maxBytes"/> bytes; a
    /// string without a NUL within them, or running into unmapped memory, is returned as far as it was read.
    /// </summary>
    /// <exception cref="HitContextExpiredException">The handler has returned.</exception>
    /// <exception cref="ProcHexException">The OS refused the read.</exception>
    public string ReadString(ulong address, int maxBytes = 4096)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxBytes);
        var bytes = new byte[maxBytes];
        var filled = 0;
        while (filled < maxBytes)
        {
            // Page by page: a short string near the end of a mapping must not fail for the bytes after it.
            var next = address + (ulong)filled;
            var chunk = (int)Math.Min((ulong)(maxBytes - filled), 4096 - (next & 4095));
            var n = ReadMemory(next, bytes.AsSpan(filled, chunk));
            var nul = bytes.AsSpan(filled, n).IndexOf((byte)0);
            if (nul >= 0)
            {
                return Encoding.UTF8.GetString(bytes, 0, filled + nul);
            }

            filled += n;
            if (n < chunk)
            {
                break;
            }
        }

        return Encoding.UTF8.GetString(bytes, 0, filled);
    }

    private HitScope Scope => _scope is { } scope && scope.IsCurrent(_generation)
        ? scope
        : throw new HitContextExpiredException(_scope is null
            ? "this hit carries no context: only hits delivered by a control loop have one"
            : $"pid {_scope.Pid}: the context of a breakpoint hit is valid only while its handler runs; copy what you need inside the handler");

    /// <inheritdoc/>
    public bool Equals(HitContext other) => ReferenceEquals(_scope, other._scope) && _generation == other._generation;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is HitContext other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(_scope, _generation);

    /// <inheritdoc/>
    public override string ToString() => _scope is null ? "no context" : IsValid ? "hit context (valid)" : "hit context (expired)";

    /// <summary>True when the two HitContext values are the same (<see cref="Equals(HitContext)"/>).</summary>
    public static bool operator ==(HitContext left, HitContext right) => left.Equals(right);

    /// <summary>True when the two HitContext values are different (<see cref="Equals(HitContext)"/>).</summary>
    public static bool operator !=(HitContext left, HitContext right) => !left.Equals(right);
}

/// <summary>A <see cref="HitContext"/> was used after its handler returned: the thread it described has run on.</summary>
public sealed class HitContextExpiredException : ObjectDisposedException
{
    /// <summary>Creates a <see cref="HitContextExpiredException"/>: <paramref name="message"/> says what failed and what to do about it.</summary>
    public HitContextExpiredException(string message) : base(nameof(HitContext), message) { }

    /// <summary>Creates a <see cref="HitContextExpiredException"/> with a generic message; prefer one that says what failed.</summary>
    public HitContextExpiredException() : this("the hit context has expired") { }

    /// <summary>Creates a <see cref="HitContextExpiredException"/>: <paramref name="message"/> says what failed and what to do about it; <paramref name="innerException"/> is the failure behind it.</summary>
    public HitContextExpiredException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>
/// The one per-victim object behind every <see cref="HitContext"/> (allocated with the control loop, reused by every
/// hit). <see cref="Open"/> starts a new generation; a context is current only while its generation is open.
/// </summary>
internal sealed class HitScope(ITracedProcess process)
{
    private long _generation;
    private bool _open;
    private int _threadId;
    private bool _haveRegisters;
    private X64Registers _registers;

    public int Pid => process.Pid;

    public HitContext Open(int threadId)
    {
        _threadId = threadId;
        _haveRegisters = false;
        var generation = Interlocked.Increment(ref _generation);
        Volatile.Write(ref _open, true);
        return new HitContext(this, generation);
    }

    public void Close() => Volatile.Write(ref _open, false);

    public bool IsCurrent(long generation) => Volatile.Read(ref _open) && Interlocked.Read(ref _generation) == generation;

    public X64Registers Registers()
    {
        if (!_haveRegisters)
        {
            try
            {
                _registers = process.ReadRegisters(_threadId);
            }
            catch (TracerException ex)
            {
                throw ProcHexException.FromBackend(ex);
            }

            _haveRegisters = true;
        }

        return _registers;
    }

    public int ReadMemory(ulong address, Span<byte> destination)
    {
        try
        {
            return process.ReadMemory(address, destination);
        }
        catch (TracerException ex)
        {
            throw ProcHexException.FromBackend(ex);
        }
    }
}
