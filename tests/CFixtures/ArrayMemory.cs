using ProcHex.Elf;

namespace ProcHex.CFixtures;

/// <summary>An image placed at an address, nothing else mapped: for feeding mutated images to the memory readers.</summary>
public sealed class ArrayMemory(ulong baseAddress, byte[] bytes) : IVictimMemory
{
    public int Read(ulong address, Span<byte> destination)
    {
        if (address < baseAddress || address - baseAddress >= (ulong)bytes.Length)
        {
            return 0;
        }

        var offset = (int)(address - baseAddress);
        var count = Math.Min(destination.Length, bytes.Length - offset);
        bytes.AsSpan(offset, count).CopyTo(destination);
        return count;
    }
}
