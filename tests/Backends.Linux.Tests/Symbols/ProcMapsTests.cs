using ProcHex.Backends.Linux.Symbols;

namespace ProcHex.Backends.Linux.Tests;

[Trait("Backend", "Linux")]
[Trait("Spec", "S12")]
public sealed class ProcMapsTests
{
    [Fact]
    public void A_path_with_spaces_that_was_deleted_keeps_its_spaces()
    {
        Assert.True(ProcMaps.TryParseLine("7f0000000000-7f0000002000 r-xp 00001000 fe:01 1234                       /tmp/dir with spaces/lib x.so (deleted)", out var entry));

        Assert.Equal(0x7f0000000000UL, entry.Start);
        Assert.Equal(0x7f0000002000UL, entry.End);
        Assert.Equal("r-xp", entry.Permissions);
        Assert.Equal(0x1000UL, entry.Offset);
        Assert.Equal((0xfeUL << 32) | 1, entry.Device);
        Assert.Equal(1234UL, entry.Inode);
        Assert.Equal("/tmp/dir with spaces/lib x.so", entry.Path);
        Assert.True(entry.IsDeleted);
        Assert.True(entry.IsFile);
        Assert.True(entry.IsExecutable);
    }

    [Theory]
    [InlineData("7ffd6f5e5000-7ffd6f5e7000 r-xp 00000000 00:00 0                          [vdso]", "[vdso]", true)]
    [InlineData("55d70eb9f000-55d70ebc0000 rw-p 00000000 00:00 0                          [heap]", "[heap]", true)]
    [InlineData("ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]", "[vsyscall]", true)]
    [InlineData("7ff010a1f000-7ff010a41000 rw-p 00000000 00:00 0 ", "", false)]
    [InlineData("7ff010a1f000-7ff010a41000 rw-p 00000000 00:00 0", "", false)]
    [InlineData("7ff010a1f000-7ff010a41000 rw-p 00000000 00:00 0    [anon:dotnet-gc]", "[anon:dotnet-gc]", true)]
    public void Pseudo_and_anonymous_mappings_are_not_files(string line, string path, bool pseudo)
    {
        Assert.True(ProcMaps.TryParseLine(line, out var entry));
        Assert.Equal(path, entry.Path);
        Assert.False(entry.IsFile);
        Assert.Equal(pseudo, entry.IsPseudo);
    }

    [Fact]
    public void A_newline_in_a_path_comes_back_from_its_escape()
    {
        Assert.True(ProcMaps.TryParseLine(@"7f00-7f10 r--p 00000000 103:02 99 /tmp/a\012b", out var entry));
        Assert.Equal("/tmp/a\nb", entry.Path);
        Assert.Equal((0x103UL << 32) | 2, entry.Device);
    }

    [Theory]
    [InlineData("hello")]
    [InlineData("7f00 r--p 00000000 00:00 0")]
    [InlineData("7f10-7f00 r--p 00000000 00:00 0")]
    [InlineData("zz00-7f00 r--p 00000000 00:00 0")]
    [InlineData("7f00-7f10 r--p 00000000 0000 0")]
    [InlineData("7f00-7f10 r--p 00000000 00:00 x /a")]
    public void Garbage_is_refused(string line)
    {
        Assert.False(ProcMaps.TryParseLine(line, out _));
        var error = Assert.Throws<FormatException>(() => ProcMaps.Parse(line + "\n"));
        Assert.Contains(line, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_maps_of_a_running_sleep_name_its_libraries_and_the_vdso()
    {
        using var sleep = System.Diagnostics.Process.Start("/bin/sleep", "60");
        try
        {
            // The exec and the linker take a moment; wait until libc is mapped.
            IReadOnlyList<ProcMapsEntry> maps = [];
            for (var i = 0; i < 200 && !maps.Any(m => m.Path.EndsWith("/libc.so.6", StringComparison.Ordinal)); i++)
            {
                Thread.Sleep(10);
                maps = ProcMaps.Read(sleep.Id);
            }

            Assert.Contains(maps, m => m.Path.EndsWith("/sleep", StringComparison.Ordinal) && m.IsExecutable);
            Assert.Contains(maps, m => m.Path.EndsWith("/libc.so.6", StringComparison.Ordinal) && m.IsExecutable);
            Assert.Contains(maps, m => m.Path.EndsWith("/ld-linux-x86-64.so.2", StringComparison.Ordinal));
            Assert.Contains(maps, m => m.Path == "[vdso]");
            Assert.Contains(maps, m => m.Path == "[stack]");
            Assert.All(maps, m => Assert.True(m.End > m.Start));

            var auxv = ProcAuxv.Read(sleep.Id);
            Assert.NotEqual(0UL, auxv.Entry);
            Assert.NotEqual(0UL, auxv.InterpreterBase);
            Assert.Contains(maps, m => m.Start == auxv.VdsoBase && m.Path == "[vdso]");
            Assert.Contains(maps, m => m.Start == auxv.InterpreterBase && m.Offset == 0);
        }
        finally
        {
            sleep.Kill();
            sleep.WaitForExit();
        }
    }

    [Fact]
    public void An_auxiliary_vector_stops_at_AT_NULL()
    {
        var bytes = new byte[6 * 16];
        void Put(int index, ulong type, ulong value)
        {
            BitConverter.GetBytes(type).CopyTo(bytes, index * 16);
            BitConverter.GetBytes(value).CopyTo(bytes, (index * 16) + 8);
        }

        Put(0, ProcAuxv.AT_PHDR, 0x400040);
        Put(1, ProcAuxv.AT_ENTRY, 0x401000);
        Put(2, ProcAuxv.AT_BASE, 0x7f00_0000_0000);
        Put(3, ProcAuxv.AT_SYSINFO_EHDR, 0x7fff_0000_0000);
        Put(4, ProcAuxv.AT_NULL, 0);
        Put(5, ProcAuxv.AT_ENTRY, 0xdead);

        Assert.Equal(new ProcAuxv(0x401000, 0x7f00_0000_0000, 0x400040, 0, 0x7fff_0000_0000), ProcAuxv.Parse(bytes));
        Assert.Equal(default, ProcAuxv.Parse(bytes.AsSpan(0, 7)));
    }
}
