using System.Buffers.Binary;

namespace ProcHex.Elf;

/// <summary>
/// Function extents from <c>.eh_frame</c>, the unwind table every GCC or Clang object keeps even when stripped: each
/// FDE (Frame Description Entry) gives the start and length of the code it describes, one per function, hand-written
/// assembly with CFI included (glibc's string functions). The format is DWARF's .debug_frame as the LSB amends it:
/// entries framed by a 32-bit length (0xffffffff: a 64-bit length follows; 0: the end), a CIE id of 0 marking a CIE,
/// and FDE pointers encoded as the CIE's augmentation ('R') says (DW_EH_PE_*).
/// </summary>
/// <remarks>
/// Reading never throws and never reads outside the bytes it is given. A table whose framing is broken (an entry
/// running past the end, an FDE whose CIE pointer does not land on a CIE) gives no extents at all: a wrong extent is
/// worse than none. An entry the reader does not understand (an unknown augmentation or pointer encoding) is skipped.
/// </remarks>
internal static class EhFrame
{
    /// <summary>DW_EH_PE_omit: no value.</summary>
    public const byte Omit = 0xff;

    private const byte FormatMask = 0x0f;
    private const byte ApplicationMask = 0x70;
    private const byte Indirect = 0x80;

    private const byte AbsPtr = 0x00, Uleb128 = 0x01, Udata2 = 0x02, Udata4 = 0x03, Udata8 = 0x04;
    private const byte Sleb128 = 0x09, Sdata2 = 0x0a, Sdata4 = 0x0b, Sdata8 = 0x0c;
    private const byte PcRel = 0x10, TextRel = 0x20, DataRel = 0x30, Aligned = 0x50;

    /// <summary>Not a DW_EH_PE value: the one-byte return address register of a version 1 CIE.</summary>
    private const byte Udata1 = 0xfe;

    /// <summary>
    /// The extents described by the .eh_frame bytes <paramref name="data"/>, which the object has at link-time address
    /// <paramref name="address"/> (pc-relative pointers are relative to it).
    /// </summary>
    /// <param name="data">The section's bytes.</param>
    /// <param name="address">The section's address (sh_addr).</param>
    /// <param name="bases">The bases of DW_EH_PE_textrel and DW_EH_PE_datarel pointers, where the object has them.</param>
    public static FunctionExtents Parse(ReadOnlySpan<byte> data, ulong address, PointerBases bases = default)
    {
        var extents = new List<(ulong Start, ulong Length)>();
        var encodings = new Dictionary<int, byte?>();
        var offset = 0;
        while (offset < data.Length)
        {
            if (!TryFrame(data, offset, out var body, out var end))
            {
                return FunctionExtents.Empty;
            }

            if (end == body)
            {
                break; // the zero terminator
            }

            var id = BinaryPrimitives.ReadUInt32LittleEndian(data[body..]);
            if (id != 0)
            {
                // An FDE: the id is the distance back from this field to its CIE.
                var cie = (long)body - id;
                if (cie < 0 || (!encodings.TryGetValue((int)cie, out var encoding) && !TryCie(data, (int)cie, address, encodings, out encoding)))
                {
                    return FunctionExtents.Empty;
                }

                if (encoding is { } known && TryFde(data, body + 4, end, known, address, bases, out var extent))
                {
                    extents.Add(extent);
                }
            }

            offset = end;
        }

        return FunctionExtents.From(extents);
    }

    /// <summary>
    /// Reads one pointer encoded as <paramref name="encoding"/> at <paramref name="position"/>, not past
    /// <paramref name="limit"/>; <paramref name="address"/> is where <paramref name="data"/> starts. False for an
    /// encoding we do not read (indirect, funcrel, a base the object lacks) or bytes that run out.
    /// </summary>
    public static bool TryReadPointer(ReadOnlySpan<byte> data, ref int position, int limit, byte encoding, ulong address, PointerBases bases, out ulong value)
    {
        value = 0;
        if (encoding == Omit || (encoding & Indirect) != 0 || limit > data.Length)
        {
            return false;
        }

        var field = unchecked(address + (ulong)position);
        var application = encoding & ApplicationMask;
        if (application == Aligned)
        {
            var padding = (int)((8 - (field % 8)) % 8);
            position += padding;
            field += (ulong)padding;
            encoding = AbsPtr;
        }

        if (!TryReadValue(data, ref position, limit, (byte)(encoding & FormatMask), out value))
        {
            return false;
        }

        ulong? relativeTo = application switch
        {
            0 or Aligned => 0,
            PcRel => field,
            TextRel => bases.Text,
            DataRel => bases.Data,
            _ => null, // funcrel needs the function, which a pointer to the function's start cannot have
        };
        value = relativeTo is { } basis ? unchecked(basis + value) : 0;
        return relativeTo is not null;
    }

    /// <summary>The body [<paramref name="body"/>, <paramref name="end"/>) of the entry at <paramref name="offset"/>; body == end for the terminator.</summary>
    private static bool TryFrame(ReadOnlySpan<byte> data, int offset, out int body, out int end)
    {
        body = end = 0;
        if (data.Length - offset < 4)
        {
            return false;
        }

        ulong length = BinaryPrimitives.ReadUInt32LittleEndian(data[offset..]);
        body = offset + 4;
        if (length == 0xffffffff)
        {
            if (data.Length - body < 8)
            {
                return false;
            }

            length = BinaryPrimitives.ReadUInt64LittleEndian(data[body..]);
            body += 8;
        }

        if (length > (ulong)(data.Length - body) || length is > 0 and < 4)
        {
            return false;
        }

        end = body + (int)length;
        return true;
    }

    /// <summary>
    /// Reads the CIE at <paramref name="offset"/> into <paramref name="encodings"/>: its FDE pointer encoding, or null
    /// when it has augmentations we cannot read. False when there is no CIE there at all (broken framing).
    /// </summary>
    private static bool TryCie(ReadOnlySpan<byte> data, int offset, ulong address, Dictionary<int, byte?> encodings, out byte? encoding)
    {
        encoding = null;
        if (!TryFrame(data, offset, out var body, out var end) || end == body || BinaryPrimitives.ReadUInt32LittleEndian(data[body..]) != 0)
        {
            return false;
        }

        encoding = ReadCie(data[..end], body + 4, address);
        encodings[offset] = encoding;
        return true;
    }

    /// <summary>The FDE pointer encoding of a CIE whose version byte is at <paramref name="position"/>; null when unreadable.</summary>
    private static byte? ReadCie(ReadOnlySpan<byte> cie, int position, ulong address)
    {
        if (position >= cie.Length || cie[position] is not (1 or 3 or 4))
        {
            return null;
        }

        var version = cie[position++];
        var terminator = cie[position..].IndexOf((byte)0);
        if (terminator < 0)
        {
            return null;
        }

        var augmentation = cie.Slice(position, terminator);
        position += terminator + 1;
        if (version == 4)
        {
            position += 2; // address_size, segment_selector_size
        }

        if (!TryReadValue(cie, ref position, cie.Length, Uleb128, out _) // code alignment factor
            || !TryReadValue(cie, ref position, cie.Length, Sleb128, out _) // data alignment factor
            || !TryReadValue(cie, ref position, cie.Length, version == 1 ? Udata1 : Uleb128, out _)) // return address register
        {
            return null;
        }

        if (augmentation.IsEmpty)
        {
            return AbsPtr;
        }

        if (augmentation[0] != (byte)'z' || !TryReadValue(cie, ref position, cie.Length, Uleb128, out var dataLength) || dataLength > (ulong)(cie.Length - position))
        {
            return null; // without 'z' ("eh", old GCC) the augmentation data cannot even be skipped
        }

        var limit = position + (int)dataLength;
        foreach (var letter in augmentation[1..])
        {
            switch ((char)letter)
            {
                case 'R':
                    return position < limit ? cie[position] : null;
                case 'L':
                    position++; // the LSDA pointer encoding; the pointer itself is in each FDE
                    break;
                case 'P':
                    if (position >= limit)
                    {
                        return null;
                    }

                    var personality = cie[position++];
                    if (!TryReadPointer(cie, ref position, limit, (byte)(personality & ~Indirect), address, new PointerBases(0, 0), out _))
                    {
                        return null;
                    }

                    break;
                case 'S' or 'B' or 'G':
                    break; // a signal frame, AArch64 BTI and MTE: no data
                default:
                    return null; // an unknown letter: where its data ends, and so where 'R' is, is unknown
            }
        }

        return AbsPtr; // 'z' without 'R': the default encoding
    }

    private static bool TryFde(ReadOnlySpan<byte> data, int position, int end, byte encoding, ulong address, PointerBases bases, out (ulong Start, ulong Length) extent)
    {
        extent = default;
        if (!TryReadPointer(data, ref position, end, encoding, address, bases, out var start)
            || !TryReadValue(data, ref position, end, (byte)(encoding & FormatMask), out var length))
        {
            return false;
        }

        // A signed encoding that reads negative, or a range that wraps, describes no function; nor does an empty one.
        if (length == 0 || (long)length < 0 || length > ulong.MaxValue - start)
        {
            return false;
        }

        extent = (start, length);
        return true;
    }

    private static bool TryReadValue(ReadOnlySpan<byte> data, ref int position, int limit, byte format, out ulong value)
    {
        value = 0;
        var available = Math.Min(limit, data.Length) - position;
        if (position < 0 || available <= 0)
        {
            return false;
        }

        var span = data.Slice(position, available);
        int size;
        switch (format)
        {
            case Udata1:
                (value, size) = (span[0], 1);
                break;
            case Udata2 when available >= 2:
                (value, size) = (BinaryPrimitives.ReadUInt16LittleEndian(span), 2);
                break;
            case Sdata2 when available >= 2:
                (value, size) = (unchecked((ulong)BinaryPrimitives.ReadInt16LittleEndian(span)), 2);
                break;
            case Udata4 when available >= 4:
                (value, size) = (BinaryPrimitives.ReadUInt32LittleEndian(span), 4);
                break;
            case Sdata4 when available >= 4:
                (value, size) = (unchecked((ulong)BinaryPrimitives.ReadInt32LittleEndian(span)), 4);
                break;
            case AbsPtr or Udata8 or Sdata8 when available >= 8:
                (value, size) = (BinaryPrimitives.ReadUInt64LittleEndian(span), 8);
                break;
            case Uleb128 or Sleb128:
                if (!TryReadLeb128(span, format == Sleb128, out value, out size))
                {
                    return false;
                }

                break;
            default:
                return false;
        }

        position += size;
        return true;
    }

    private static bool TryReadLeb128(ReadOnlySpan<byte> span, bool signed, out ulong value, out int size)
    {
        value = 0;
        var shift = 0;
        for (size = 0; size < span.Length && size < 10; size++)
        {
            var b = span[size];
            value |= (ulong)(b & 0x7f) << shift;
            shift += 7;
            if ((b & 0x80) == 0)
            {
                size++;
                if (signed && shift < 64 && (b & 0x40) != 0)
                {
                    value |= ulong.MaxValue << shift;
                }

                return true;
            }
        }

        return false;
    }
}

/// <summary>The bases of DW_EH_PE_textrel (.text) and DW_EH_PE_datarel (the GOT, as libgcc takes it) pointers; null when unknown.</summary>
internal readonly record struct PointerBases(ulong? Text, ulong? Data);
