using System.Buffers.Binary;
using CsCheck;

namespace ProcHex.Elf.Tests;

/// <summary>
/// Issue 18: function extents from .eh_frame, on tables built byte by byte (CIE and FDE layouts of the LSB's
/// "Exception Frames" and the DW_EH_PE pointer encodings), so each encoding and each way a table can be broken is
/// pinned down. The section is at <see cref="Section"/>, as if linked there.
/// </summary>
public sealed class EhFrameTests
{
    private const ulong Section = 0x2000;

    /// <summary>DW_CFA_def_cfa rsp+8; DW_CFA_offset rip at cfa-8: what every x86-64 CIE starts with.</summary>
    private static readonly byte[] CieInstructions = [0x0c, 0x07, 0x08, 0x90, 0x01];

    [Fact]
    [Trait("Issue", "18")]
    public void Pc_relative_sdata4_FDEs_as_gcc_emits_them_give_each_function_start_and_length_and_nothing_inside()
    {
        var table = new Table();
        var cie = table.Cie("zR", [0x1b]); // DW_EH_PE_pcrel | DW_EH_PE_sdata4
        table.Fde(cie, at => Int32(0x1130 - ((long)Section + at)), Int32(0x2a));
        table.Fde(cie, at => Int32(0x4000 - ((long)Section + at)), Int32(0x1f0), augmentation: []);
        table.Terminator();

        var extents = EhFrame.Parse(table.Bytes, Section);

        Assert.Equal(2, extents.Count);
        Assert.True(extents.TryGetLength(0x1130, out var first));
        Assert.Equal(0x2aul, first);
        Assert.True(extents.TryGetLength(0x4000, out var second));
        Assert.Equal(0x1f0ul, second);
        Assert.False(extents.TryGetLength(0x1131, out _), "an address inside a function is not a function's start");
    }

    [Fact]
    [Trait("Issue", "18.2")]
    public void The_branch_check_reaches_up_to_the_next_entry_when_an_entry_covers_less_than_its_function()
    {
        var table = new Table();
        var cie = table.Cie("zR", [0x1b]);
        table.Fde(cie, at => Int32(0x1000 - ((long)Section + at)), Int32(0x30)); // clone: 0x30 of a 0x5b-byte function
        table.Fde(cie, at => Int32(0x1060 - ((long)Section + at)), Int32(0x20));
        table.Fde(cie, at => Int32(0x9_0000 - ((long)Section + at)), Int32(0x10)); // far away: the gap is no tail
        table.Terminator();

        var extents = EhFrame.Parse(table.Bytes, Section);

        Assert.True(extents.TryGetReach(0x1000, 0x1_0000, out var clone));
        Assert.Equal(0x60ul, clone); // its uncovered tail is checked for branches too
        Assert.True(extents.TryGetReach(0x1060, 0x1_0000, out var beforeGap));
        Assert.Equal(0x20ul, beforeGap); // the next entry lies beyond the limit: its own range
        Assert.True(extents.TryGetReach(0x9_0000, 0x1_0000, out var last));
        Assert.Equal(0x10ul, last);
        Assert.False(extents.TryGetReach(0x1001, 0x1_0000, out _));
    }

    [Theory]
    [Trait("Issue", "18")]
    [InlineData("", null)] // no augmentation: absptr, as in .debug_frame
    [InlineData("zR", (byte)0x04)] // DW_EH_PE_udata8
    [InlineData("zR", (byte)0x00)] // DW_EH_PE_absptr, spelled out
    public void Absolute_eight_byte_pointers_are_read_as_addresses(string augmentation, byte? encoding)
    {
        var table = new Table();
        var cie = table.Cie(augmentation, encoding is { } e ? [e] : [], augmented: augmentation.Length > 0);
        table.Fde(cie, _ => UInt64(0x7f00_0000_1000), UInt64(0x80), augmentation: augmentation.Length > 0 ? [] : null);

        var extents = EhFrame.Parse(table.Bytes, Section);

        Assert.True(extents.TryGetLength(0x7f00_0000_1000, out var length));
        Assert.Equal(0x80ul, length);
    }

    /// <summary>Every DW_EH_PE value format, absolute and against the bases a table may name (textrel, datarel).</summary>
    [Theory]
    [Trait("Issue", "18")]
    [InlineData((byte)0x02, "3412", "4000")] // udata2
    [InlineData((byte)0x0a, "3412", "4000")] // sdata2
    [InlineData((byte)0x03, "34120000", "40000000")] // udata4
    [InlineData((byte)0x01, "b424", "40")] // uleb128: 0x1234
    [InlineData((byte)0x09, "b424", "c000")] // sleb128: 0x1234, and 0x40 needs a second byte (bit 6 would make it negative)
    [InlineData((byte)0x0c, "3412000000000000", "4000000000000000")] // sdata8
    [InlineData((byte)0x23, "34020000", "40000000")] // textrel udata4: .text (0x1000) + 0x234
    [InlineData((byte)0x3b, "3402ffff", "40000000")] // datarel sdata4: the GOT (0x11000) - 0xfdcc
    public void Each_pointer_format_and_base_gives_the_same_extent(byte encoding, string start, string range)
    {
        var table = new Table();
        var cie = table.Cie("zR", [encoding]);
        table.Fde(cie, _ => Convert.FromHexString(start), Convert.FromHexString(range), augmentation: []);

        var extents = EhFrame.Parse(table.Bytes, Section, new PointerBases(0x1000, 0x11000));

        Assert.True(extents.TryGetLength(0x1234, out var length), $"encoding 0x{encoding:x2}: no extent at 0x1234");
        Assert.Equal(0x40ul, length);
    }

    [Fact]
    [Trait("Issue", "18")]
    public void A_personality_and_an_LSDA_in_the_augmentation_are_skipped_to_find_the_FDE_encoding()
    {
        var table = new Table();
        // "zPLR" as g++ emits it: personality indirect|pcrel|sdata4 and its pointer, LSDA pcrel|sdata4, FDE pcrel|sdata4.
        var cie = table.Cie("zPLR", [0x9b, 0x11, 0x22, 0x33, 0x44, 0x1b, 0x1b]);
        // Each FDE's augmentation data holds its LSDA pointer.
        table.Fde(cie, at => Int32(0x1500 - ((long)Section + at)), Int32(0x99), augmentation: [0x55, 0x66, 0x77, 0x08]);
        // An aligned personality (DW_EH_PE_aligned) and a signal frame ('S') are read too.
        var aligned = table.Cie("zPRS", [0x50, .. new byte[7], .. UInt64(0x1234), 0x1b], alignPersonality: true);
        table.Fde(aligned, at => Int32(0x1600 - ((long)Section + at)), Int32(0x10), augmentation: []);

        var extents = EhFrame.Parse(table.Bytes, Section);

        Assert.True(extents.TryGetLength(0x1500, out var length));
        Assert.Equal(0x99ul, length);
        Assert.True(extents.TryGetLength(0x1600, out var second), "the aligned personality was skipped to the right place");
        Assert.Equal(0x10ul, second);
    }

    [Fact]
    [Trait("Issue", "18")]
    public void Entries_with_a_64_bit_extended_length_are_read()
    {
        var table = new Table { Extended = true };
        var cie = table.Cie("zR", [0x1b]);
        table.Fde(cie, at => Int32(0x1700 - ((long)Section + at)), Int32(0x30), augmentation: []);
        table.Terminator();

        var extents = EhFrame.Parse(table.Bytes, Section);

        Assert.True(extents.TryGetLength(0x1700, out var length));
        Assert.Equal(0x30ul, length);
    }

    [Fact]
    [Trait("Issue", "18")]
    public void A_truncated_table_gives_no_extents_and_no_prefix_of_a_table_throws()
    {
        var table = new Table();
        var cie = table.Cie("zR", [0x1b]);
        table.Fde(cie, at => Int32(0x1130 - ((long)Section + at)), Int32(0x2a), augmentation: []);
        var secondFde = table.Bytes.Length;
        table.Fde(cie, at => Int32(0x1200 - ((long)Section + at)), Int32(0x10), augmentation: []);
        var whole = table.Bytes;

        Assert.Equal(0, EhFrame.Parse(whole.AsSpan(0, secondFde + 6), Section).Count);
        for (var cut = 0; cut <= whole.Length; cut++)
        {
            var extents = EhFrame.Parse(whole.AsSpan(0, cut), Section);
            Assert.True(extents.Count is 0 || cut >= secondFde, $"cut at {cut}: {extents.Count} extents");
        }
    }

    [Fact]
    [Trait("Issue", "18")]
    public void An_FDE_whose_CIE_pointer_misses_every_CIE_makes_the_table_unusable()
    {
        var table = new Table();
        var cie = table.Cie("zR", [0x1b]);
        table.Fde(cie, at => Int32(0x1130 - ((long)Section + at)), Int32(0x2a), augmentation: []);
        table.Fde(cie + 8, at => Int32(0x1200 - ((long)Section + at)), Int32(0x10), augmentation: []);

        Assert.Equal(0, EhFrame.Parse(table.Bytes, Section).Count);
    }

    [Fact]
    [Trait("Issue", "18")]
    public void FDEs_of_a_CIE_with_an_unknown_augmentation_are_skipped_and_the_rest_kept()
    {
        var table = new Table();
        var unknown = table.Cie("zXR", [0x01, 0x1b]);
        table.Fde(unknown, at => Int32(0x1130 - ((long)Section + at)), Int32(0x2a), augmentation: []);
        var known = table.Cie("zR", [0x1b]);
        table.Fde(known, at => Int32(0x1200 - ((long)Section + at)), Int32(0x10), augmentation: []);
        table.Fde(known, at => Int32(0x1300 - ((long)Section + at)), Int32(0), augmentation: []); // empty: no function

        var extents = EhFrame.Parse(table.Bytes, Section);

        Assert.Equal(1, extents.Count);
        Assert.True(extents.TryGetLength(0x1200, out _));
    }

    [Fact]
    [Trait("Issue", "18")]
    public void Mutated_tables_never_throw_or_read_outside_their_bytes()
    {
        var table = new Table();
        var cie = table.Cie("zPLR", [0x9b, 0x11, 0x22, 0x33, 0x44, 0x1b, 0x1b]);
        table.Fde(cie, at => Int32(0x1500 - ((long)Section + at)), Int32(0x99), augmentation: [0x55, 0x66, 0x77, 0x08]);
        var extended = new Table { Extended = true };
        extended.Fde(extended.Cie("zR", [0x04]), _ => UInt64(0x1600), UInt64(0x20), augmentation: []);
        byte[] seed = [.. table.Bytes, .. extended.Bytes];

        Gen.Select(Gen.Int[0, seed.Length - 1], Gen.Byte, Gen.Int[0, seed.Length]).Array[1, 6].Sample(mutations =>
        {
            var bytes = (byte[])seed.Clone();
            var length = bytes.Length;
            foreach (var (at, value, cut) in mutations)
            {
                bytes[at] = value;
                length = Math.Min(length, cut);
            }

            // A span over exactly the kept bytes: reading one past it would throw.
            _ = EhFrame.Parse(bytes.AsSpan(0, length), Section);
        }, iter: 5000);
    }

    private static byte[] Int32(long value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, checked((int)value));
        return bytes;
    }

    private static byte[] UInt64(ulong value)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
        return bytes;
    }

    /// <summary>An .eh_frame being written: CIEs and FDEs appended with their lengths and CIE pointers filled in.</summary>
    private sealed class Table
    {
        private readonly List<byte> _bytes = [];

        /// <summary>Entries get a 0xffffffff length and a 64-bit length after it.</summary>
        public bool Extended { get; init; }

        public byte[] Bytes => [.. _bytes];

        /// <summary>Appends a version 1 CIE; returns its offset.</summary>
        public int Cie(string augmentation, byte[] data, bool augmented = true, bool alignPersonality = false)
        {
            var start = _bytes.Count;
            var body = new List<byte>();
            body.AddRange([0, 0, 0, 0, 1]); // CIE id 0, version 1
            body.AddRange(System.Text.Encoding.ASCII.GetBytes(augmentation));
            body.AddRange([0, 0x01, 0x78, 0x10]); // code alignment 1, data alignment -8, return address register 16
            if (augmented && augmentation.StartsWith('z'))
            {
                var payload = data;
                if (alignPersonality)
                {
                    // The encoding byte at the uleb's end + 1; pad so the pointer after it falls on 8 in the section.
                    var pointerAt = (ulong)(start + HeaderSize + body.Count + 2);
                    var padding = (int)((8 - ((Section + pointerAt) % 8)) % 8);
                    payload = [data[0], .. new byte[padding], .. data.AsSpan(8, data.Length - 8)];
                }

                body.Add((byte)payload.Length);
                body.AddRange(payload);
            }

            body.AddRange(CieInstructions);
            Append(body);
            return start;
        }

        /// <summary>Appends an FDE of the CIE at <paramref name="cie"/>; <paramref name="start"/> gets the pc_begin field's offset in the section.</summary>
        public void Fde(int cie, Func<int, byte[]> start, byte[] range, byte[]? augmentation = null)
        {
            var idAt = _bytes.Count + HeaderSize;
            var body = new List<byte>();
            body.AddRange(BitConverter.GetBytes((uint)(idAt - cie)));
            body.AddRange(start(idAt + 4));
            body.AddRange(range);
            if (augmentation is not null)
            {
                body.Add((byte)augmentation.Length);
                body.AddRange(augmentation);
            }

            body.AddRange([0x41, 0x0e, 0x10]); // DW_CFA_advance_loc 1; DW_CFA_def_cfa_offset 16
            Append(body);
        }

        public void Terminator() => _bytes.AddRange([0, 0, 0, 0]);

        private int HeaderSize => Extended ? 12 : 4;

        private void Append(List<byte> body)
        {
            while ((body.Count + HeaderSize) % 8 != 0)
            {
                body.Add(0); // DW_CFA_nop
            }

            if (Extended)
            {
                _bytes.AddRange(BitConverter.GetBytes(uint.MaxValue));
                _bytes.AddRange(BitConverter.GetBytes((ulong)body.Count));
            }
            else
            {
                _bytes.AddRange(BitConverter.GetBytes((uint)body.Count));
            }

            _bytes.AddRange(body);
        }
    }
}
