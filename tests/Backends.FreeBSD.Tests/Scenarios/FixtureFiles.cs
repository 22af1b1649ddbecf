using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace ProcHex.Tests.FreeBSD.Scenarios;

/// <summary>
/// The C programs in tests/fixtures, compiled once per test run with the system's <c>cc</c> (gcc on Debian, clang
/// on FreeBSD) into a temporary directory, plus the stub of FreeBSD's dynamic linker the kernel fake maps.
/// </summary>
internal static class FixtureFiles
{
    /// <summary>
    /// What the fake maps as ld-elf.so.1: the three symbols lib/librtld_db and our agent look for, with rtld's
    /// shapes (libexec/rtld-elf/rtld.c, sys/sys/link_elf.h). The fake's scripts "call" them as rtld would.
    /// </summary>
    private const string RtldStub = """
        struct r_debug { int r_version; void *r_map; void (*r_brk)(void); int r_state; void *r_ldbase; };
        struct r_debug r_debug = { 1 };
        __attribute__((noinline)) void r_debug_state(struct r_debug *r, void *m) { __asm__ volatile("" ::: "memory"); }
        __attribute__((noinline)) void _r_debug_postinit(void *m) { __asm__ volatile("" ::: "memory"); }
        """;

    private static readonly Lazy<string> Compiled = new(Compile, LazyThreadSafetyMode.ExecutionAndPublication);

    public static string Dir => Compiled.Value;

    public static string PathOf(string name) => Path.Combine(Dir, name);

    /// <summary>The rtld stub, for the fake only (a real FreeBSD has /libexec/ld-elf.so.1).</summary>
    public static string RtldStubPath => PathOf("ld-elf.so.1");

    private static string Compile()
    {
        var source = FindFixtures();
        var dir = Path.Combine(Path.GetTempPath(), $"prochex-freebsd-fixtures-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        foreach (var file in Directory.EnumerateFiles(source, "*.c"))
        {
            var name = Path.GetFileNameWithoutExtension(file);
            if (name.StartsWith("lib", StringComparison.Ordinal))
            {
                Run("cc", "-O0", "-g", "-shared", "-fPIC", "-o", Path.Combine(dir, name + ".so"), file);
            }
            else
            {
                Run("cc", "-O0", "-g", "-pthread", "-o", Path.Combine(dir, name), file);
            }
        }

        var stub = Path.Combine(dir, "rtld-stub.c");
        File.WriteAllText(stub, RtldStub);
        Run("cc", "-O0", "-shared", "-fPIC", "-o", Path.Combine(dir, "ld-elf.so.1"), stub);
        return dir;
    }

    private static string FindFixtures([CallerFilePath] string here = "")
    {
        var beside = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(here)!, "..", "..", "fixtures"));
        return Directory.Exists(beside) ? beside : throw new DirectoryNotFoundException($"tests/fixtures not found at {beside}");
    }

    private static void Run(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var errors = process.StandardError.ReadToEnd();
        _ = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(120_000) || process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} failed: {errors}");
        }
    }
}
