using System.Diagnostics;

namespace ProcHex.CFixtures;

/// <summary>
/// The ELF fixtures of tests/CFixtures/elf (a program as PIE, non-PIE and static, and one library copied under two
/// names), compiled once per test class with the system gcc: for the ELF reader's tests and the Linux symbol tests.
/// </summary>
public sealed class CompiledFixtures : IDisposable
{
    public CompiledFixtures()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("prochex-elf-").FullName;
        var source = Path.Combine(AppContext.BaseDirectory, "elf");
        var fixture = Path.Combine(source, "fixture.c");
        Pie = Compile("fixture-pie", "-pie", "-fPIE", "-O1", "-g0", fixture, "-ldl");
        NonPie = Compile("fixture-nopie", "-no-pie", "-fno-pie", "-O1", fixture, "-ldl");
        Static = Compile("fixture-static", "-static", "-O1", "-DNO_DLOPEN", fixture);
        var library = Compile("libtwice.so", "-shared", "-fPIC", "-O1", Path.Combine(source, "twice.c"));
        LibraryA = CopyTo("a", library);
        LibraryB = CopyTo("b", library);
    }

    public string Directory { get; }

    public string Pie { get; }

    public string NonPie { get; }

    public string Static { get; }

    public string LibraryA { get; }

    public string LibraryB { get; }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A fixture still being killed can hold the directory for a moment; /tmp is cleaned anyway.
        }
    }

    private string Compile(string output, params string[] arguments)
    {
        var path = Path.Combine(Directory, output);
        var info = new ProcessStartInfo("gcc") { RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        info.ArgumentList.Add("-o");
        info.ArgumentList.Add(path);
        using var gcc = Process.Start(info)!;
        var errors = gcc.StandardError.ReadToEnd();
        gcc.WaitForExit();
        return gcc.ExitCode == 0 ? path : throw new InvalidOperationException($"gcc {string.Join(' ', arguments)} failed: {errors}");
    }

    private string CopyTo(string subdirectory, string file)
    {
        var directory = Path.Combine(Directory, subdirectory);
        System.IO.Directory.CreateDirectory(directory);
        var target = Path.Combine(directory, Path.GetFileName(file));
        File.Copy(file, target, overwrite: true);
        return target;
    }
}
