using System.Buffers.Binary;
using System.Text;
using ProcHex.Ports;

namespace ProcHex.Elf;

/// <summary>
/// The dynamic linker's <c>struct r_debug</c> as read from a victim (glibc and FreeBSD amd64 share the layout):
/// <c>{ int r_version; struct link_map *r_map; ElfW(Addr) r_brk; r_state; ElfW(Addr) r_ldbase; }</c>.
/// </summary>
/// <param name="Address">Where the structure lives in the victim.</param>
/// <param name="Version">r_version: 0 until the linker has initialised it (glibc 2.35+ writes 2 with dlmopen namespaces).</param>
/// <param name="FirstLinkMap">r_map: the head of the library list, the executable first.</param>
/// <param name="BreakAddress">r_brk: the function the linker calls around every change of the list (_dl_debug_state).</param>
/// <param name="RawState">r_state: RT_CONSISTENT = 0, RT_ADD = 1, RT_DELETE = 2.</param>
/// <param name="LinkerBase">r_ldbase: where the linker itself is loaded.</param>
public readonly record struct RDebug(ulong Address, int Version, ulong FirstLinkMap, ulong BreakAddress, int RawState, ulong LinkerBase)
{
    /// <summary>sizeof(struct r_debug) on LP64.</summary>
    public const int Size = 40;

    /// <summary>RT_CONSISTENT: the link_map list is complete.</summary>
    public const int RtConsistent = 0;
    /// <summary>RT_ADD: a library is being added.</summary>
    public const int RtAdd = 1;
    /// <summary>RT_DELETE: a library is being removed.</summary>
    public const int RtDelete = 2;

    /// <summary>True once the linker has filled the structure in (before that it is all zeroes).</summary>
    public bool IsInitialized => Version != 0;

    /// <summary>r_state in the port's words; an unknown value is an error (we are reading the wrong memory).</summary>
    public RtldState State => RawState switch
    {
        RtConsistent => RtldState.Consistent,
        RtAdd => RtldState.Adding,
        RtDelete => RtldState.Deleting,
        _ => throw new ElfFormatException($"r_debug at 0x{Address:x}: r_state {RawState} is none of RT_CONSISTENT, RT_ADD, RT_DELETE"),
    };

    /// <summary>Reads <c>struct r_debug</c> at <paramref name="address"/>.</summary>
    /// <exception cref="ElfFormatException">The memory cannot be read.</exception>
    public static RDebug Read(IVictimMemory memory, ulong address)
    {
        ArgumentNullException.ThrowIfNull(memory);
        Span<byte> bytes = stackalloc byte[Size];
        if (memory.Read(address, bytes) != Size)
        {
            throw new ElfFormatException($"r_debug at 0x{address:x} is not readable");
        }

        return new RDebug(
            address,
            BinaryPrimitives.ReadInt32LittleEndian(bytes),
            BinaryPrimitives.ReadUInt64LittleEndian(bytes[8..]),
            BinaryPrimitives.ReadUInt64LittleEndian(bytes[16..]),
            BinaryPrimitives.ReadInt32LittleEndian(bytes[24..]),
            BinaryPrimitives.ReadUInt64LittleEndian(bytes[32..]));
    }

    /// <summary>Walks the library list from <see cref="FirstLinkMap"/>; see <see cref="LinkMap.ReadList"/>.</summary>
    public IReadOnlyList<LinkMap> ReadLinkMaps(IVictimMemory memory, int maxEntries = LinkMap.DefaultMaxEntries) =>
        LinkMap.ReadList(memory, FirstLinkMap, maxEntries);
}

/// <summary>
/// One node of the linker's library list, <c>struct link_map { l_addr; l_name; l_ld; l_next; l_prev; }</c>
/// (the public head of glibc's larger private structure).
/// </summary>
/// <param name="Address">The node itself.</param>
/// <param name="LoadBias">l_addr: symbol values plus this are addresses.</param>
/// <param name="Name">l_name: the path as the linker opened it; "" for the executable (and often the vDSO's soname).</param>
/// <param name="DynamicSection">l_ld: the object's dynamic section in memory, which identifies the mapping.</param>
/// <param name="Next">l_next: the next node, 0 at the end.</param>
/// <param name="Previous">l_prev: the previous node, 0 at the executable.</param>
public readonly record struct LinkMap(ulong Address, ulong LoadBias, string Name, ulong DynamicSection, ulong Next, ulong Previous)
{
    /// <summary>sizeof(struct link_map)'s public part on LP64: the five fields read here.</summary>
    public const int Size = 40;

    /// <summary>How many nodes a walk reads before it calls the list corrupt (a loop or garbage).</summary>
    public const int DefaultMaxEntries = 65536;

    /// <summary>PATH_MAX: longer names are cut there rather than read for ever.</summary>
    public const int MaxNameLength = 4096;

    /// <summary>Reads the link_map node at <paramref name="address"/>, its name included.</summary>
    /// <param name="memory">The victim's memory.</param>
    /// <param name="address">The node's address.</param>
    public static LinkMap Read(IVictimMemory memory, ulong address)
    {
        ArgumentNullException.ThrowIfNull(memory);
        Span<byte> bytes = stackalloc byte[Size];
        if (memory.Read(address, bytes) != Size)
        {
            throw new ElfFormatException($"link_map at 0x{address:x} is not readable");
        }

        var namePointer = BinaryPrimitives.ReadUInt64LittleEndian(bytes[8..]);
        return new LinkMap(
            address,
            BinaryPrimitives.ReadUInt64LittleEndian(bytes),
            namePointer == 0 ? string.Empty : ReadCString(memory, namePointer, MaxNameLength),
            BinaryPrimitives.ReadUInt64LittleEndian(bytes[16..]),
            BinaryPrimitives.ReadUInt64LittleEndian(bytes[24..]),
            BinaryPrimitives.ReadUInt64LittleEndian(bytes[32..]));
    }

    /// <summary>
    /// Walks l_next from <paramref name="first"/>. The list lives in a victim that may be changing it or be
    /// corrupt: a node seen twice (a loop) or more than <paramref name="maxEntries"/> nodes is an error, not a hang.
    /// </summary>
    /// <exception cref="ElfFormatException">A node is unreadable, the list loops, or it is too long.</exception>
    public static IReadOnlyList<LinkMap> ReadList(IVictimMemory memory, ulong first, int maxEntries = DefaultMaxEntries)
    {
        var list = new List<LinkMap>();
        var seen = new HashSet<ulong>();
        for (var address = first; address != 0;)
        {
            if (!seen.Add(address))
            {
                throw new ElfFormatException($"link_map list from 0x{first:x} loops back to 0x{address:x} after {list.Count} entries");
            }

            if (list.Count >= maxEntries)
            {
                throw new ElfFormatException($"link_map list from 0x{first:x} has more than {maxEntries} entries");
            }

            var node = Read(memory, address);
            list.Add(node);
            address = node.Next;
        }

        return list;
    }

    /// <summary>Reads a NUL-terminated string in steps that stay inside one page, so an unmapped next page cannot fail a short name.</summary>
    internal static string ReadCString(IVictimMemory memory, ulong address, int maxLength)
    {
        var buffer = new byte[maxLength];
        var length = 0;
        while (length < maxLength)
        {
            var at = address + (ulong)length;
            var toPageEnd = 4096 - (int)(at & 4095);
            var chunk = buffer.AsSpan(length, Math.Min(toPageEnd, maxLength - length));
            var read = memory.Read(at, chunk);
            if (read <= 0)
            {
                throw new ElfFormatException($"string at 0x{address:x} is not readable at 0x{at:x}");
            }

            var end = chunk[..read].IndexOf((byte)0);
            if (end >= 0)
            {
                return Encoding.UTF8.GetString(buffer, 0, length + end);
            }

            length += read;
        }

        return Encoding.UTF8.GetString(buffer, 0, length);
    }
}
