using System.Diagnostics;

namespace ProcHex.Tests.Support;

/// <summary>
/// The C programs in tests/fixtures, compiled once per test run with gcc into a temporary directory (the same
/// approach as the Linux backend's tests; <c>.ci/run</c> installs gcc when it is missing).
/// </summary>
internal static class Fixtures
{
    private static readonly Lazy<string> Directory_ = new(Compile, LazyThreadSafetyMode.ExecutionAndPublication);

    public static string Dir => Directory_.Value;

    public static string PathOf(string name) => Path.Combine(Dir, name);

    private static string Compile()
    {
        var source = FindFixtures();
        var dir = Path.Combine(Path.GetTempPath(), $"prochex-cli-fixtures-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        foreach (var file in Directory.EnumerateFiles(source, "*.c"))
        {
            var name = Path.GetFileNameWithoutExtension(file);
            if (name.StartsWith("lib", StringComparison.Ordinal))
            {
                Run("gcc", "-O0", "-g", "-shared", "-fPIC", "-o", Path.Combine(dir, name + ".so"), file);
            }
            else
            {
                Run("gcc", "-O0", "-g", "-pthread", "-o", Path.Combine(dir, name), file);
            }
        }

        return dir;
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

    private static void Run(string file, params string[] args)
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

        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed: {stderr.Result}{stdout.Result}");
        }
    }
}
