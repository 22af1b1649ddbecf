using System.Globalization;
using System.Text.RegularExpressions;

namespace ProcHex.Peers;

/// <summary>
/// The programs every peer runs, compiled with gcc into a temporary directory at start: libpeer.so (peer_tick),
/// the peerfix driver that calls it N times through its PLT, the tiny program of the latency test and the C tracer.
/// </summary>
internal sealed partial class Fixture : IDisposable
{
    public const string Library = "libpeer.so";
    public const string Function = "peer_tick";

    private Fixture(string directory) => Directory = directory;

    public string Directory { get; }

    public string Driver => Path.Combine(Directory, "peerfix");

    public string Tiny => Path.Combine(Directory, "tiny");

    /// <summary>100 functions called by 4 threads until killed (c/many.c): the in-victim install-time fixture.</summary>
    public string Many => Path.Combine(Directory, "many");

    public string CTracer => Path.Combine(Directory, "ctrace");

    /// <summary>nm's offset of main in the driver (a PIE: the load bias is added at run time).</summary>
    public ulong MainOffset { get; private set; }

    /// <summary>nm's offset of peer_tick in libpeer.so.</summary>
    public ulong FunctionOffset { get; private set; }

    /// <summary>peer_tick's first instruction as objdump shows it.</summary>
    public string FirstInstruction { get; private set; } = "";

    public const string Spec = Library + "`" + Function;

    private static int _runs;

    /// <summary>A fresh file the driver writes "calls nanoseconds" to.</summary>
    public string NewTimeFile() => Path.Combine(Directory, $"time-{Interlocked.Increment(ref _runs)}");

    public static async Task<Fixture> BuildAsync()
    {
        var gcc = Tool.Find("gcc") ?? throw new BenchFailure("gcc is not on PATH: the bench compiles its fixture at run time (apt-get install gcc)");
        var sources = Path.Combine(AppContext.BaseDirectory, "c");
        var fixture = new Fixture(System.IO.Directory.CreateTempSubdirectory("prochex-peers-").FullName);
        var dir = fixture.Directory;
        string Src(string name) => Path.Combine(sources, name);

        // -fcf-protection=branch: peer_tick opens with endbr64 whatever the distribution's default is.
        await Tool.MustRunAsync(gcc, "-O2", "-shared", "-fPIC", "-fcf-protection=branch", "-o", Path.Combine(dir, Library), Src("peerlib.c"));
        await Tool.MustRunAsync(gcc, "-O2", "-pthread", "-o", fixture.Driver, Src("peerfix.c"), "-L" + dir, "-lpeer", "-Wl,-rpath," + dir);
        await Tool.MustRunAsync(gcc, "-O2", "-o", fixture.Tiny, Src("tiny.c"));

        // -O0: every function opens with push %rbp; mov %rsp,%rbp, which a jump may replace (at -O2 they are lea; ret).
        await Tool.MustRunAsync(gcc, "-O0", "-pthread", "-o", fixture.Many, Src("many.c"));
        await Tool.MustRunAsync(gcc, "-O2", "-Wall", "-Wextra", "-Werror", "-o", fixture.CTracer, Src("ctrace.c"));

        fixture.MainOffset = await SymbolOffsetAsync(fixture.Driver, "main", dynamic: false);
        fixture.FunctionOffset = await SymbolOffsetAsync(Path.Combine(dir, Library), Function, dynamic: true);
        fixture.FirstInstruction = await FirstInstructionAsync(Path.Combine(dir, Library), Function);
        return fixture;
    }

    /// <summary>The instructions ProcHex emulates at a function's entry that the bench relies on.</summary>
    public bool FirstInstructionIsEmulatable =>
        FirstInstruction.StartsWith("endbr64", StringComparison.Ordinal)
        || FirstInstruction.StartsWith("push   %rbp", StringComparison.Ordinal)
        || FirstInstruction.StartsWith("nop", StringComparison.Ordinal);

    private static async Task<ulong> SymbolOffsetAsync(string file, string symbol, bool dynamic)
    {
        var nm = Tool.Find("nm") ?? throw new BenchFailure("nm is not on PATH (binutils)");
        var output = await Tool.MustRunAsync(nm, dynamic ? ["-D", "--defined-only", file] : ["--defined-only", file]);
        foreach (var line in output.Split('\n'))
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 3 && parts[2] == symbol && parts[1] is "T" or "t")
            {
                return ulong.Parse(parts[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            }
        }

        throw new BenchFailure($"nm finds no {symbol} in {file}");
    }

    private static async Task<string> FirstInstructionAsync(string file, string symbol)
    {
        var objdump = Tool.Find("objdump") ?? throw new BenchFailure("objdump is not on PATH (binutils)");
        var output = await Tool.MustRunAsync(objdump, "-d", "--no-show-raw-insn", $"--disassemble={symbol}", file);
        var lines = output.Split('\n');
        var start = Array.FindIndex(lines, l => l.EndsWith($"<{symbol}>:", StringComparison.Ordinal));
        if (start >= 0 && start + 1 < lines.Length && InstructionLine().Match(lines[start + 1]) is { Success: true } m)
        {
            return m.Groups[1].Value.Trim();
        }

        throw new BenchFailure($"objdump shows no instruction of {symbol} in {file}");
    }

    [GeneratedRegex(@"^\s*[0-9a-f]+:\s*(.*)$")]
    private static partial Regex InstructionLine();

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A temp directory left behind is harmless.
        }
    }
}
