using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;

namespace ProcHex.CFixtures;

/// <summary>
/// The C programs in tests/fixtures, compiled once per process into a temporary directory: with gcc on Linux
/// (<c>.ci/run</c> installs it when it is missing), with the system's <c>cc</c> elsewhere (clang on FreeBSD). The
/// C++ ones (*.cpp) with g++ (<c>c++</c> elsewhere).
/// </summary>
public static class FixturePrograms
{
    private static readonly Lazy<string> Compiled = new(CompileAll, LazyThreadSafetyMode.ExecutionAndPublication);
    private static readonly Dictionary<(string, string), ulong> Symbols = [];

    public static string Compiler { get; } = OperatingSystem.IsLinux() ? "gcc" : "cc";

    public static string CxxCompiler { get; } = OperatingSystem.IsLinux() ? "g++" : "c++";

    /// <summary>The directory of the compiled fixtures (compiled on first use).</summary>
    public static string Dir => Compiled.Value;

    public static string PathOf(string name) => Path.Combine(Dir, name);

    /// <summary>
    /// Compiles one fixture into <paramref name="dir"/>: lib*.c into a shared library lib*.so, any other into a
    /// program that honours a first line "/* build: FLAGS */" ({dir} is <paramref name="dir"/>).
    /// </summary>
    public static void Compile(string file, string dir, params string[] flags)
    {
        var name = Path.GetFileNameWithoutExtension(file);
        if (name.StartsWith("lib", StringComparison.Ordinal))
        {
            Run(Compiler, ["-O0", "-g", "-shared", "-fPIC", "-o", Path.Combine(dir, name + ".so"), file, .. flags]);
        }
        else
        {
            var compiler = file.EndsWith(".cpp", StringComparison.Ordinal) ? CxxCompiler : Compiler;
            Run(compiler, ["-O0", "-g", "-pthread", "-o", Path.Combine(dir, name), file, .. BuildFlags(file, dir), .. flags]);
        }
    }

    /// <summary>
    /// The link-time address of <paramref name="symbol"/> (nm) in <paramref name="program"/>: a fixture's name,
    /// or a path.
    /// </summary>
    public static ulong Symbol(string program, string symbol)
    {
        lock (Symbols)
        {
            if (Symbols.TryGetValue((program, symbol), out var known))
            {
                return known;
            }

            foreach (var line in Run("nm", Path.IsPathRooted(program) ? program : PathOf(program)).Split('\n'))
            {
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length == 3 && parts[2] == symbol)
                {
                    return Symbols[(program, symbol)] = ulong.Parse(parts[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                }
            }

            throw new InvalidOperationException($"{symbol} not found in {program}");
        }
    }

    /// <summary>Runs <paramref name="file"/> to its end (two minutes at most) and returns its standard output.</summary>
    public static string Run(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000))
        {
            p.Kill();
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish in two minutes");
        }

        return p.ExitCode == 0
            ? stdout.Result
            : throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed (exit {p.ExitCode}): {stderr.Result}{stdout.Result}");
    }

    /// <summary>Every fixture, libraries first (a program may link against one: its build line says so).</summary>
    private static string CompileAll()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"prochex-fixtures-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        var sources = Directory.EnumerateFiles(FindSources(), "*.c").Concat(Directory.EnumerateFiles(FindSources(), "*.cpp"));
        foreach (var file in sources.OrderBy(f => Path.GetFileName(f).StartsWith("lib", StringComparison.Ordinal) ? 0 : 1))
        {
            Compile(file, dir);
        }

        return dir;
    }

    private static string[] BuildFlags(string file, string dir)
    {
        const string Prefix = "/* build: ";
        var first = File.ReadLines(file).FirstOrDefault() ?? "";
        return first.StartsWith(Prefix, StringComparison.Ordinal) && first.EndsWith("*/", StringComparison.Ordinal)
            ? first[Prefix.Length..^2].Replace("{dir}", dir, StringComparison.Ordinal).Split(' ', StringSplitOptions.RemoveEmptyEntries)
            : [];
    }

    /// <summary>
    /// tests/fixtures: found above the running assembly (as in .ci/unprivileged's copy of the built tests beside a
    /// copy of the fixtures), else beside this source file (built with --artifacts-path outside the tree).
    /// </summary>
    private static string FindSources([CallerFilePath] string here = "")
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            var candidate = Path.Combine(d.FullName, "tests", "fixtures");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        var beside = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(here)!, "..", "fixtures"));
        return Directory.Exists(beside) ? beside : throw new DirectoryNotFoundException($"tests/fixtures not found above {AppContext.BaseDirectory} nor at {beside}");
    }
}
