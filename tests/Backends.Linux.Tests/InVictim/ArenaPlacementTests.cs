using CsCheck;
using ProcHex.Backends.Linux.InVictim;
using ProcHex.Backends.Linux.Symbols;

namespace ProcHex.Backends.Linux.Tests.InVictim;

/// <summary>Where counter arenas go (issue 18 item 1): free gaps within reach of the function, below it first.</summary>
public sealed class ArenaPlacementTests
{
    private const ulong Size = 0x2_0000;

    private static ProcMapsEntry Map(ulong start, ulong end, string path = "/usr/bin/x") => new(start, end, "r-xp", 0, 0, path.StartsWith('/') ? 1UL : 0, path, false);

    [Fact]
    [Trait("Issue", "18.1")]
    public void The_gap_just_below_the_object_comes_first_then_the_nearest_above()
    {
        var maps = new[]
        {
            Map(0x5555_0000_0000, 0x5555_0001_0000), // the executable
            Map(0x5555_0010_0000, 0x5555_0020_0000, "[heap]"),
            Map(0x7f00_0000_0000, 0x7f00_0010_0000, "/usr/lib/libc.so.6"),
        };

        var candidates = ArenaPlacement.Candidates(maps, 0x5555_0000_4000, Size);

        Assert.Equal(0x5555_0000_0000 - ArenaPlacement.Guard - Size, candidates[0]);
        Assert.Equal(0x5555_0001_0000 + ArenaPlacement.Guard, candidates[1]); // between the executable and its heap
        Assert.DoesNotContain(candidates, c => c >= 0x5555_0020_0000 && c < 0x5555_0020_0000 + ArenaPlacement.HeapRoom); // brk grows there
    }

    [Fact]
    [Trait("Issue", "18.1")]
    public void Nothing_just_below_the_stack_nor_out_of_reach_and_the_libraries_take_the_gap_above_the_heap()
    {
        var maps = new[]
        {
            Map(0x5555_0010_0000, 0x5555_0020_0000, "[heap]"),
            Map(0x7ffd_0000_0000, 0x7ffd_0002_0000, "[stack]"),
            Map(0x7ff0_0000_0000, 0x7ff0_0010_0000, "/usr/lib/libc.so.6"),
        };

        var candidates = ArenaPlacement.Candidates(maps, 0x7ff0_0000_1000, Size);

        Assert.Equal(0x7ff0_0000_0000 - ArenaPlacement.Guard - Size, candidates[0]); // just below libc
        Assert.All(candidates, c => Assert.True(c + Size < 0x7ff0_0000_1000 + ArenaPlacement.Reach && c > 0x7ff0_0000_1000 - ArenaPlacement.Reach, $"0x{c:x}"));
        Assert.DoesNotContain(candidates, c => c + Size > 0x7ffd_0000_0000 - ArenaPlacement.StackRoom && c < 0x7ffd_0000_0000);
    }

    [Fact]
    [Trait("Issue", "18.1")]
    public void Property_every_candidate_is_free_aligned_guarded_and_in_reach()
    {
        var mapping = Gen.Select(Gen.ULong[0x10, 0x7ff_0000], Gen.ULong[1, 0x4000], Gen.Int[0, 3]);
        Gen.Select(mapping.Array[1, 12], Gen.Int[0, 11]).Sample((plan, pick) =>
        {
            var maps = plan.Select(m => Map(m.Item1 << 20, (m.Item1 << 20) + (m.Item2 << 12), m.Item3 switch { 0 => "[heap]", 1 => "[stack]", _ => "/lib/x.so" })).ToList();
            var target = maps[pick % maps.Count].Start;
            var low = target > ArenaPlacement.Reach ? target - ArenaPlacement.Reach : 0;
            var candidates = ArenaPlacement.Candidates(maps, target, Size);
            if (plan.All(m => m.Item3 >= 2))
            {
                Assert.NotEmpty(candidates); // without a heap or a stack to keep clear of, 12 mappings of 64 MiB cannot fill 2 GiB
            }

            foreach (var c in candidates)
            {
                Assert.Equal(0UL, c & 0xfff);
                Assert.True(c + Size <= target + ArenaPlacement.Reach && low <= c, $"0x{c:x} out of reach of 0x{target:x}");
                Assert.DoesNotContain(maps, m => c < m.End + ArenaPlacement.Guard && m.Start < c + Size + ArenaPlacement.Guard);
                // In the same gap as a heap below or a stack above, the room they grow into stays free.
                Assert.DoesNotContain(maps, m => m.Path == "[heap]" && c >= m.End && c < m.End + ArenaPlacement.HeapRoom
                    && !maps.Any(o => o.Start >= m.End && o.Start < c));
                Assert.DoesNotContain(maps, m => m.Path == "[stack]" && c + Size <= m.Start && c + Size > m.Start - ArenaPlacement.StackRoom
                    && !maps.Any(o => o.End <= m.Start && o.End > c + Size));
            }
        }, iter: 2_000);
    }
}
