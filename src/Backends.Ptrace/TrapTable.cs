using ProcHex.Arch.X64;
using ProcHex.Ports;

namespace ProcHex.Backends.Ptrace;

/// <summary>
/// The traps an adapter planted in the victim's current image, with the bytes they replaced, and the ones removed
/// since that image began: one table for both ptrace adapters. It never touches the victim itself except through
/// the <see cref="ITrapText"/> it is handed, and it is not thread-safe: each adapter calls it under its own
/// discipline (Linux on the owner thread, FreeBSD under its gate).
/// </summary>
/// <remarks>
/// "Was this trap ours" (<see cref="Judge"/>): int3 leaves the PC one past the trap. The address before it is ours
/// when a trap is planted there now, or when one was planted there in this image and removed since, and the byte there
/// no longer is a trap (the core removed it between the hit and our look at it). Both conditions are needed. The
/// Linux adapter used to accept any address whose byte is not an int3, which also rewinds a trap we never planted: a
/// two-byte <c>int $3</c> (CD 03) leaves a 0x03 before the PC and the same SI_KERNEL SIGTRAP, and rewinding it would
/// run the victim from the middle of that instruction instead of delivering the program's SIGTRAP. The FreeBSD rule,
/// kept here, needs the evidence of a trap of ours at that address.
/// </remarks>
internal sealed class TrapTable
{
    private readonly Dictionary<ulong, byte> _planted = [];
    private readonly Dictionary<ulong, byte> _removed = [];
    private readonly Dictionary<ulong, byte[]> _text = [];

    /// <summary>How many traps are planted.</summary>
    public int Count => _planted.Count;

    /// <summary>The planted traps' addresses.</summary>
    public IEnumerable<ulong> Addresses => _planted.Keys;

    /// <summary>The planted traps and the bytes they replaced.</summary>
    public IReadOnlyDictionary<ulong, byte> Planted => _planted;

    /// <summary>The traps removed since this image began, with the bytes they had replaced.</summary>
    public IReadOnlyDictionary<ulong, byte> Removed => _removed;

    /// <summary>True when a trap of ours is planted at <paramref name="address"/>.</summary>
    public bool Contains(ulong address) => _planted.ContainsKey(address);

    /// <summary>The byte the trap at <paramref name="address"/> replaced, when one is planted there.</summary>
    public bool TryGetOriginal(ulong address, out byte original) => _planted.TryGetValue(address, out original);

    /// <summary>
    /// The original text at the planted trap at <paramref name="address"/> as <see cref="KeepText"/> kept it, or null:
    /// what a step-over decodes, read once per trap instead of once per hit.
    /// </summary>
    public byte[]? TextAt(ulong address) => _text.GetValueOrDefault(address);

    /// <summary>
    /// Keeps <paramref name="text"/>, the original text at the planted trap at <paramref name="address"/> (our traps
    /// overlaid), until the trap is removed or the image goes: the text under a trap of ours does not change meanwhile.
    /// </summary>
    public void KeepText(ulong address, byte[] text)
    {
        if (_planted.ContainsKey(address))
        {
            _text[address] = text;
        }
    }

    /// <summary>Records a trap written at <paramref name="address"/> over <paramref name="original"/>.</summary>
    public BreakpointPatch Add(ulong address, byte original)
    {
        _text.Remove(address);
        _planted[address] = original;
        _removed.Remove(address);
        return new BreakpointPatch(address, original, X64Trap.Int3Length);
    }

    /// <summary>Forgets the trap at <paramref name="address"/> as removed; false when none was planted there (an image an exec replaced).</summary>
    public bool Remove(ulong address)
    {
        if (!_planted.Remove(address, out var original))
        {
            return false;
        }

        _text.Remove(address);
        _removed[address] = original;
        return true;
    }

    /// <summary>
    /// Whose trap a thread took when its PC is one past <paramref name="trapAddress"/> (see the class remarks). The
    /// victim's byte is read only for an address that was ours and is no longer planted.
    /// </summary>
    public TrapVerdict Judge(ulong trapAddress, ITrapText text)
    {
        if (_planted.ContainsKey(trapAddress))
        {
            return TrapVerdict.Ours;
        }

        return _removed.ContainsKey(trapAddress) && text.ReadByte(trapAddress) is { } b && b != X64Trap.Int3
            ? TrapVerdict.Removed
            : TrapVerdict.NotOurs;
    }

    /// <summary>Puts the original bytes of our traps into <paramref name="text"/>, a copy of the victim's bytes read at <paramref name="address"/>.</summary>
    public void Overlay(ulong address, Span<byte> text)
    {
        foreach (var (at, original) in _planted)
        {
            if (at >= address && at - address < (ulong)text.Length)
            {
                text[(int)(at - address)] = original;
            }
        }
    }

    /// <summary>
    /// Writes every original byte back through <paramref name="text"/>, then forgets the traps as removed (a thread that
    /// took one just before is still rewound). A failed write goes to <paramref name="failed"/>, which answers whether
    /// to go on with the others.
    /// </summary>
    public void RestoreAll(ITrapText text, Func<ulong, TracerException, bool> failed)
    {
        foreach (var (address, original) in _planted)
        {
            try
            {
                text.WriteByte(address, original);
            }
            catch (TracerException e)
            {
                if (!failed(address, e))
                {
                    break;
                }
            }
        }

        foreach (var (address, original) in _planted)
        {
            _removed[address] = original;
        }

        _planted.Clear();
        _text.Clear();
    }

    /// <summary>Forgets everything: the image the traps were planted in is gone (exec, or the victim let go).</summary>
    public void Clear()
    {
        _planted.Clear();
        _text.Clear();
        _removed.Clear();
    }

    /// <summary>The planted traps and the bytes they replaced, without allocating.</summary>
    public Dictionary<ulong, byte>.Enumerator GetEnumerator() => _planted.GetEnumerator();
}
