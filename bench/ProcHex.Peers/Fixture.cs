using System.Globalization;
using System.Text.RegularExpressions;

namespace ProcHex.Peers;

/// <summary>
/// The programs every peer runs, compiled with gcc into a temporary directory at start: one build of libpeer.so
/// (peer_tick) per <see cref="BuildVariant"/>, each in a directory of its own with the peerfix driver that calls it N
/// times through its PLT (linked with an rpath to that directory); and, shared by the builds, the tiny program of the
/// latency test, the 100-function install fixture and the C tracer.
/// </summary>
internal sealed partial class Fixture
{
    public const string Library = "libpeer.so";
    public const string Function = "peer_tick";

    private readonly string _shared;

    private Fixture(BuildVariant variant, string directory, string shared)
    {
        Variant = variant;
        Directory = directory;
        _shared = shared;
    }

    /// <summary>How libpeer.so was compiled.</summary>
    public BuildVariant Variant { get; }

    /// <summary>This build's directory: libpeer.so, the driver, and the files peers write per run.</summary>
    public string Directory { get; }

    public string Driver => Path.Combine(Directory, "peerfix");

    public string Tiny => Path.Combine(_shared, "tiny");

    /// <summary>100 functions called by 4 threads until killed (c/many.c): the in-victim install-time fixture.</summary>
    public string Many => Path.Combine(_shared, "many");

    public string CTracer => Path.Combine(_shared, "ctrace");

    /// <summary>nm's offset of main in the driver (a PIE: the load bias is added at run time).</summary>
    public ulong MainOffset { get; private set; }

    /// <summary>nm's offset of peer_tick in libpeer.so.</summary>
    public ulong FunctionOffset { get; private set; }

    /// <summary>peer_tick's first instruction as objdump shows it (its address comment dropped, spaces squeezed).</summary>
    public string FirstInstruction { get; private set; } = "";

    public const string Spec = Library + "`" + Function;

    private static int _runs;

    /// <summary>A fresh file the driver writes "calls nanoseconds" to.</summary>
    public string NewTimeFile() => Path.Combine(Directory, $"time-{Interlocked.Increment(ref _runs)}");

    /// <summary>Builds the shared programs into <paramref name="shared"/>.</summary>
    internal static async Task BuildSharedAsync(string gcc, string shared)
    {
        await Tool.MustRunAsync(gcc, "-O2", "-o", Path.Combine(shared, "tiny"), Source("tiny.c"));

        // -O0: every function opens with push %rbp; mov %rsp,%rbp, which a jump may replace (at -O2 they are lea; ret).
        await Tool.MustRunAsync(gcc, "-O0", "-pthread", "-o", Path.Combine(shared, "many"), Source("many.c"));
        await Tool.MustRunAsync(gcc, "-O2", "-Wall", "-Wextra", "-Werror", "-o", Path.Combine(shared, "ctrace"), Source("ctrace.c"));
    }

    /// <summary>Builds libpeer.so the <paramref name="variant"/> way and its driver into a subdirectory of <paramref name="shared"/>.</summary>
    internal static async Task<Fixture> BuildAsync(string gcc, string shared, BuildVariant variant)
    {
        var fixture = new Fixture(variant, System.IO.Directory.CreateDirectory(Path.Combine(shared, variant.Name)).FullName, shared);
        var dir = fixture.Directory;
        var library = Path.Combine(dir, Library);
        await Tool.MustRunAsync(gcc, ["-O2", "-shared", "-fPIC", .. variant.Flags, "-o", library, Source("peerlib.c")]);
        await Tool.MustRunAsync(gcc, "-O2", "-pthread", "-o", fixture.Driver, Source("peerfix.c"), "-L" + dir, "-lpeer", "-Wl,-rpath," + dir);

        fixture.MainOffset = await SymbolOffsetAsync(fixture.Driver, "main", dynamic: false);
        fixture.FunctionOffset = await SymbolOffsetAsync(library, Function, dynamic: true);
        fixture.FirstInstruction = await FirstInstructionAsync(library, Function);
        if (variant.Expected is { } expected && !fixture.FirstInstruction.StartsWith(expected, StringComparison.Ordinal))
        {
            throw new BenchFailure($"the {variant.Name} build ({variant.CommandLine}) of {Function} opens with '{fixture.FirstInstruction}', not {expected}: that build would not be measured");
        }

        return fixture;
    }

    private static string Source(string name) => Path.Combine(AppContext.BaseDirectory, "c", name);

    /// <summary>The instructions ProcHex emulates at a function's entry that the bench relies on.</summary>
    public bool FirstInstructionIsEmulatable =>
        FirstInstruction.StartsWith("endbr64", StringComparison.Ordinal)
        || FirstInstruction.StartsWith("push %rbp", StringComparison.Ordinal)
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
            return Spaces().Replace(m.Groups[1].Value.Split('#')[0].Trim(), " ");
        }

        throw new BenchFailure($"objdump shows no instruction of {symbol} in {file}");
    }

    [GeneratedRegex(@"^\s*[0-9a-f]+:\s*(.*)$")]
    private static partial Regex InstructionLine();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Spaces();
}
