using Iced.Intel;

namespace ProcHex.Arch.X64;

/// <summary>
/// Every direct branch target of an object's code (jmp, jcc, call, loop, xbegin with a near target), found by a linear
/// sweep of the whole executable mapping: what an entry patch must not split. A function's own extent is not enough:
/// hand-written code enters its neighbours behind their first instruction (glibc's <c>__mempcpy_*</c> ends in a jump to
/// the instruction after <c>__memmove_*</c>'s first, in another function's bytes). Bytes that are data or padding may
/// decode to a branch: such a target only makes a site refused, never accepted. Indirect branches are not seen. Pure.
/// </summary>
internal sealed class BranchTargets
{
    private readonly ulong[] _targets;

    private BranchTargets(ulong[] targets) => _targets = targets;

    /// <summary>How many distinct targets were found.</summary>
    public int Count => _targets.Length;

    /// <summary>Decodes <paramref name="code"/>, which lies at <paramref name="address"/>, from its first byte to its last.</summary>
    public static BranchTargets Scan(ulong address, ReadOnlySpan<byte> code)
    {
        var targets = new List<ulong>();
        var reader = new ByteArrayCodeReader(code.ToArray());
        var decoder = Decoder.Create(64, reader, address);
        var end = address + (ulong)code.Length;
        while (decoder.IP < end)
        {
            decoder.Decode(out var instruction);
            if (instruction.IsInvalid)
            {
                // One byte on, not past what Iced took as the bad instruction: a branch may start right after.
                reader.Position = (int)(instruction.IP - address) + 1;
                decoder.IP = instruction.IP + 1;
                continue;
            }

            if (instruction.Op0Kind is OpKind.NearBranch16 or OpKind.NearBranch32 or OpKind.NearBranch64)
            {
                targets.Add(instruction.NearBranchTarget);
            }
        }

        targets.Sort();
        return new BranchTargets([.. targets.Distinct()]);
    }

    /// <summary>The first target strictly inside (<paramref name="start"/>, <paramref name="end"/>), if any.</summary>
    public ulong? Inside(ulong start, ulong end)
    {
        var index = Array.BinarySearch(_targets, start + 1);
        if (index < 0)
        {
            index = ~index;
        }

        return index < _targets.Length && _targets[index] < end ? _targets[index] : null;
    }
}
