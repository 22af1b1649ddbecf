using System.Diagnostics;
using System.Globalization;
using ProcHex.CFixtures;

namespace ProcHex.Chaos;

/// <summary>
/// The victims' programs, compiled with gcc at start-up into a private directory: the repository's test fixtures
/// (tests/fixtures) and the chaos ones (src/Chaos/fixtures: churn, nanny).
/// </summary>
internal sealed class Fixtures : IDisposable
{
    private static readonly string[] Reused = ["sleeper", "ticker", "loop", "threads", "fork", "exec", "vfork"];
    private static readonly string[] Own = ["churn", "nanny"];
    private readonly Dictionary<string, ulong> _calls = [];

    private Fixtures(string dir) => Dir = dir;

    public string Dir { get; }

    public static Fixtures Compile()
    {
        var repo = FindRepository();
        var shared = Path.Combine(repo, "tests", "fixtures");
        var own = Path.Combine(repo, "src", "Chaos", "fixtures");
        var dir = Path.Combine(Path.GetTempPath(), string.Create(CultureInfo.InvariantCulture, $"prochex-chaos-{Environment.ProcessId}"));
        Directory.CreateDirectory(dir);
        var fixtures = new Fixtures(dir);
        foreach (var (name, source) in Reused.Select(n => (n, shared)).Concat(Own.Select(n => (n, own))))
        {
            FixturePrograms.Compile(Path.Combine(source, name + ".c"), dir, "-I", shared);
        }

        foreach (var name in Reused.Append("churn"))
        {
            fixtures._calls[name] = FixturePrograms.Symbol(Path.Combine(dir, name), "calls");
        }

        return fixtures;
    }

    public string PathOf(string name) => Path.Combine(Dir, name);

    /// <summary>The link-time address of the fixture's <c>calls</c> counter (every call to work() adds one).</summary>
    public ulong CallsSymbol(string name) => _calls[name];

    /// <summary>
    /// Starts <paramref name="program"/> untraced under a nanny, as a grandchild of a shell that exits at once: not
    /// our child (we may grab it), and its end is written to <paramref name="statusFile"/>. Returns its pid, or
    /// null when the nanny did not report one in time.
    /// </summary>
    public async Task<(int Pid, int Nanny)?> StartExternalAsync(string statusFile, string program, IReadOnlyList<string> arguments)
    {
        var words = new[] { PathOf("nanny"), statusFile, PathOf(program), program }.Concat(arguments).Select(w => $"'{w}'");
        var nanny = int.Parse(FixturePrograms.Run("/bin/sh", "-c", $"{string.Join(' ', words)} </dev/null >/dev/null 2>&1 & echo $!").Trim(), CultureInfo.InvariantCulture);
        var deadline = Stopwatch.StartNew();
        while (deadline.ElapsedMilliseconds < 5000)
        {
            if (NannyReport.Read(statusFile) is { Pid: { } pid })
            {
                return (pid, nanny);
            }

            await Task.Delay(2);
        }

        return null;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static string FindRepository()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory, Path.GetDirectoryName(ThisFile()) ?? "/" })
        {
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
            {
                if (File.Exists(Path.Combine(d.FullName, "tests", "fixtures", "common.h")) && Directory.Exists(Path.Combine(d.FullName, "src", "Chaos", "fixtures")))
                {
                    return d.FullName;
                }
            }
        }

        throw new DirectoryNotFoundException("the repository (tests/fixtures and src/Chaos/fixtures) was not found; run from its root");
    }

    private static string ThisFile([System.Runtime.CompilerServices.CallerFilePath] string path = "") => path;
}

/// <summary>What a nanny wrote: the victim's pid and, once it ended, how.</summary>
internal readonly record struct NannyReport(int? Pid, int? Code, int? Signal)
{
    public bool Ended => Code is not null;

    public static NannyReport? Read(string file)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(file);
        }
        catch (IOException)
        {
            return null;
        }

        int? pid = null, code = null, signal = null;
        foreach (var line in lines)
        {
            var parts = line.Split(' ');
            if (parts is ["pid", var p])
            {
                pid = int.Parse(p, CultureInfo.InvariantCulture);
            }
            else if (parts is ["exit", var c, var s])
            {
                code = int.Parse(c, CultureInfo.InvariantCulture);
                signal = int.Parse(s, CultureInfo.InvariantCulture);
            }
        }

        return new NannyReport(pid, code, signal);
    }
}
