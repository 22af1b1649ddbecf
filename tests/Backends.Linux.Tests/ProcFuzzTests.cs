using CsCheck;
using ProcHex.Backends.Linux.Symbols;

namespace ProcHex.Backends.Linux.Tests;

/// <summary>
/// Issue 8, item 4: hostile /proc contents. Our own maps and auxv, mutated at random (bytes overwritten,
/// dropped, duplicated, lines cut short), parse or fail with the documented FormatException: no other exception,
/// no hang. A failing case prints its CsCheck seed and replays from it.
/// </summary>
[Trait("Backend", "Linux")]
public sealed class ProcFuzzTests
{
    private const int Cases = 5_000;

    private sealed record Edit(int Kind, double Where, int Length, byte Value);

    private static readonly Gen<Edit[]> Edits = Gen.Select(Gen.Int[0, 3], Gen.Double[0, 1], Gen.Int[1, 12], Gen.Byte,
        (kind, where, length, value) => new Edit(kind, where, length, value)).Array[1, 6];

    public static TheoryData<int> CaseCount() => [Cases];

    [Theory]
    [MemberData(nameof(CaseCount))]
    public void Mutated_maps_parse_or_fail_with_FormatException(int bound)
    {
        var original = File.ReadAllBytes("/proc/self/maps");
        var parsed = 0;
        Edits.Sample(
            edits =>
            {
                var text = System.Text.Encoding.Latin1.GetString(Apply(original, edits));
                try
                {
                    foreach (var entry in ProcMaps.Parse(text))
                    {
                        _ = (entry.IsExecutable, entry.IsFile, entry.IsPseudo, entry.Size, entry.Path);
                    }

                    Interlocked.Increment(ref parsed);
                }
                catch (FormatException)
                {
                }
            },
            iter: bound,
            threads: 1);

        Assert.InRange(parsed, 1, bound);
    }

    [Theory]
    [MemberData(nameof(CaseCount))]
    public void Mutated_auxv_parses_without_throwing(int bound)
    {
        var original = File.ReadAllBytes("/proc/self/auxv");
        var real = ProcAuxv.Parse(original);
        Assert.NotEqual(0ul, real.Entry);
        Edits.Sample(edits => _ = ProcAuxv.Parse(Apply(original, edits)), iter: bound, threads: 1);
    }

    private static byte[] Apply(byte[] original, Edit[] edits)
    {
        var bytes = new List<byte>(original);
        foreach (var edit in edits)
        {
            var at = (int)(edit.Where * bytes.Count);
            var length = Math.Min(edit.Length, bytes.Count - at);
            switch (edit.Kind)
            {
                case 0:
                    for (var i = 0; i < length; i++)
                    {
                        bytes[at + i] = edit.Value;
                    }

                    break;
                case 1:
                    bytes.RemoveRange(at, length);
                    break;
                case 2:
                    bytes.InsertRange(at, bytes.GetRange(at, length));
                    break;
                default:
                    bytes.RemoveRange(at, bytes.Count - at);
                    break;
            }
        }

        return [.. bytes];
    }
}
