using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace ProcHex.Elf;

/// <summary>
/// Where the bytes of an ELF image come from: an array, a file, or a victim's memory. Every read names what it
/// is reading, so a truncated or hostile image fails with a message a person can act on, and every range is
/// checked against <see cref="Length"/> with overflow-free arithmetic before anything is touched.
/// </summary>
internal abstract class ElfSource
{
    protected ElfSource(string name, ulong length)
    {
        Name = name;
        Length = length;
    }

    /// <summary>The image's name for messages: a path, "[vdso]", or "pid 42 0x7f...".</summary>
    public string Name { get; }

    /// <summary>How many bytes the image has (for memory: how far reads may go).</summary>
    public ulong Length { get; }

    public ElfFormatException Error(string message) => new($"{Name}: {message}");

    /// <summary>Throws unless [offset, offset + size) lies inside the image.</summary>
    public void CheckRange(ulong offset, ulong size, string what)
    {
        if (size > Length || offset > Length - size)
        {
            throw Error($"{what} (offset 0x{offset:x}, size 0x{size:x}) lies outside the image (0x{Length:x} bytes)");
        }
    }

    public void Read(ulong offset, Span<byte> destination, string what)
    {
        CheckRange(offset, (ulong)destination.Length, what);
        ReadCore(offset, destination, what);
    }

    /// <summary>Reads [offset, offset + size) into a new array, refusing sizes above <paramref name="cap"/>.</summary>
    public byte[] ReadArray(ulong offset, ulong size, string what, int cap)
    {
        if (size > (ulong)cap)
        {
            throw Error($"{what} is 0x{size:x} bytes, more than the 0x{cap:x} we accept");
        }

        CheckRange(offset, size, what);
        var bytes = new byte[(int)size];
        ReadCore(offset, bytes, what);
        return bytes;
    }

    public ulong ReadUInt64(ulong offset, string what)
    {
        Span<byte> buffer = stackalloc byte[8];
        Read(offset, buffer, what);
        return BinaryPrimitives.ReadUInt64LittleEndian(buffer);
    }

    public uint ReadUInt32(ulong offset, string what)
    {
        Span<byte> buffer = stackalloc byte[4];
        Read(offset, buffer, what);
        return BinaryPrimitives.ReadUInt32LittleEndian(buffer);
    }

    /// <summary>
    /// Reads [offset, offset + size) when the function returned is called, null when it cannot then; what is out of
    /// range or above <paramref name="cap"/> is never read. An array or memory is copied now; a file is reopened then,
    /// so a parsed image holds no handle.
    /// </summary>
    public virtual Func<byte[]?> ReadLater(ulong offset, ulong size, string what, int cap)
    {
        try
        {
            var bytes = ReadArray(offset, size, what, cap);
            return () => bytes;
        }
        catch (ElfFormatException)
        {
            return static () => null;
        }
    }

    /// <summary>Reads exactly destination.Length bytes; the range is already checked.</summary>
    protected abstract void ReadCore(ulong offset, Span<byte> destination, string what);
}

internal sealed class ArrayElfSource(string name, ReadOnlyMemory<byte> image) : ElfSource(name, (ulong)image.Length)
{
    protected override void ReadCore(ulong offset, Span<byte> destination, string what) =>
        image.Span.Slice((int)offset, destination.Length).CopyTo(destination);
}

/// <summary>Reads a file with positional reads: only the parts we parse are ever loaded.</summary>
internal sealed class FileElfSource(string name, SafeFileHandle file, ulong length) : ElfSource(name, length)
{
    /// <summary>Reopens the file by its name when called; a file that changed since (length, modification time) gives null.</summary>
    public override Func<byte[]?> ReadLater(ulong offset, ulong size, string what, int cap)
    {
        if (size > (ulong)cap || size > Length || offset > Length - size)
        {
            return static () => null;
        }

        var written = File.GetLastWriteTimeUtc(file);
        return () =>
        {
            try
            {
                using var again = File.OpenHandle(Name, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                return (ulong)RandomAccess.GetLength(again) == Length && File.GetLastWriteTimeUtc(again) == written
                    ? new FileElfSource(Name, again, Length).ReadArray(offset, size, what, cap)
                    : null;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ElfFormatException)
            {
                return null;
            }
        };
    }

    protected override void ReadCore(ulong offset, Span<byte> destination, string what)
    {
        var done = 0;
        while (done < destination.Length)
        {
            var read = RandomAccess.Read(file, destination[done..], (long)offset + done);
            if (read <= 0)
            {
                // The file shrank under us (rewritten while mapped): the same complaint as a truncated file.
                throw Error($"{what} at offset 0x{offset + (ulong)done:x} could not be read: the file ended early");
            }

            done += read;
        }
    }
}

/// <summary>
/// A victim's memory seen as an image starting at <paramref name="baseAddress"/>. Offsets are added to the base
/// (for an image mapped whole, like the vDSO, they are file offsets; for a loaded object read by address, the
/// base is 0 and offsets are addresses).
/// </summary>
internal sealed class MemoryElfSource(string name, IVictimMemory memory, ulong baseAddress, ulong length)
    : ElfSource(name, length)
{
    protected override void ReadCore(ulong offset, Span<byte> destination, string what)
    {
        var address = baseAddress + offset;
        var read = memory.Read(address, destination);
        if (read != destination.Length)
        {
            throw Error($"{what} at 0x{address:x} (0x{destination.Length:x} bytes) is not readable in memory (got 0x{Math.Max(read, 0):x})");
        }
    }
}
