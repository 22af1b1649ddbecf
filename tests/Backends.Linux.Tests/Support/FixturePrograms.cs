using System.Diagnostics;
using System.Globalization;

namespace ProcHex.Tests.Support;

/// <summary>
/// The C programs in tests/fixtures, compiled once per test run with gcc into a temporary directory
/// (<c>.ci/run</c> installs gcc when it is missing).
/// </summary>
internal static class FixturePrograms
{
    private static readonly Lazy<string> Directory_ = new(Compile, LazyThreadSafetyMode.ExecutionAndPublication);
    private static readonly Dictionary<(string, string), ulong> Symbols = [];

    public static string Dir => Directory_.Value;

    public static string PathOf(string name) => Path.Combine(Dir, name);

    /// <summary>The link-time address of <paramref name="symbol"/> in the program (nm).</summary>
    public static ulong Symbol(string program, string symbol)
    {
        lock (Symbols)
        {
            if (Symbols.TryGetValue((program, symbol), out var known))
            {
                return known;
            }

            var output = Run("nm", PathOf(program));
            foreach (var line in output.Split('\n'))
            {
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length == 3 && parts[2] == symbol)
                {
                    var value = ulong.Parse(parts[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                    Symbols[(program, symbol)] = value;
                    return value;
                }
            }

            throw new InvalidOperationException($"{symbol} not found in {program}");
        }
    }

    private static string Compile()
    {
        var source = FindFixtures();
        var dir = Path.Combine(Path.GetTempPath(), $"prochex-fixtures-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        // Libraries first: a program may link against one (its "/* build: FLAGS */" first line says so).
        foreach (var file in Directory.EnumerateFiles(source, "*.c").OrderBy(f => Path.GetFileName(f).StartsWith("lib", StringComparison.Ordinal) ? 0 : 1))
        {
            var name = Path.GetFileNameWithoutExtension(file);
            if (name.StartsWith("lib", StringComparison.Ordinal))
            {
                Run("gcc", "-O0", "-g", "-shared", "-fPIC", "-o", Path.Combine(dir, name + ".so"), file);
            }
            else
            {
                Run("gcc", ["-O0", "-g", "-pthread", "-o", Path.Combine(dir, name), file, .. BuildFlags(file, dir)]);
            }
        }

        return dir;
    }

    /// <summary>Extra gcc arguments from a first line "/* build: FLAGS */" ({dir} is the output directory).</summary>
    private static string[] BuildFlags(string file, string dir)
    {
        const string Prefix = "/* build: ";
        var first = File.ReadLines(file).FirstOrDefault() ?? "";
        return first.StartsWith(Prefix, StringComparison.Ordinal) && first.EndsWith("*/", StringComparison.Ordinal)
            ? first[Prefix.Length..^2].Replace("{dir}", dir, StringComparison.Ordinal).Split(' ', StringSplitOptions.RemoveEmptyEntries)
            : [];
    }

    private static string FindFixtures()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            var candidate = Path.Combine(d.FullName, "tests", "fixtures");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        // Built with --artifacts-path outside the tree: fall back to the repository this file lives in.
        var here = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(ThisFile())!, "..", "..", "fixtures"));
        return Directory.Exists(here) ? here : throw new DirectoryNotFoundException("tests/fixtures not found");
    }

    private static string ThisFile([System.Runtime.CompilerServices.CallerFilePath] string path = "") => path;

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
        if (!p.WaitForExit(60_000))
        {
            p.Kill();
            throw new TimeoutException($"{file} timed out");
        }

        return p.ExitCode == 0 ? stdout.Result : throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed: {stderr.Result}");
    }
}
