using System.Globalization;
using ProcHex.Elf;
using ProcHex.Scenarios;
using ProcHex.Backends.FreeBSD.Tests.FakeKernel;
using static Interop;

namespace ProcHex.Backends.FreeBSD.Tests.Scenarios;

/// <summary>
/// The scenario catalogue for the kernel fake: each program is the real compiled fixture (its segments mapped
/// byte for byte, so the adapter reads real ELF symbols from the real file), and a script that does what the C
/// source does, step by step, including what FreeBSD's rtld does around it (r_debug_state before the
/// initializers, _r_debug_postinit after them, r_state changes around dlopen and dlclose).
/// </summary>
internal sealed class FakeCatalogue
{
    private const ulong ExecutableBase = 0x1000000;
    private const ulong RtldBase = 0x800200000;
    private const ulong LibraryBase = 0x800800000;
    private const int RtAdd = 1;
    private const int RtDelete = 2;

    private readonly Loaded _rtld;

    private FakeCatalogue()
    {
        _rtld = Load(FakeRtld.StubPath, RtldBase);
    }

    /// <summary>A kernel with every catalogue program installed at its fixture path.</summary>
    public static FakeFreeBsdKernel NewKernel(FakeAttach attach)
    {
        var kernel = new FakeFreeBsdKernel(attach) { ProcfsMounted = true };
        new FakeCatalogue().Install(kernel);
        return kernel;
    }

    /// <summary>The fixture's file name: tests/fixtures/NAME.c, lower case ("selfstop", "dlopen").</summary>
    public static string FileName(ProgramKind kind) => kind.ToString().ToLowerInvariant();

    private void Install(FakeFreeBsdKernel kernel)
    {
        foreach (var kind in Enum.GetValues<ProgramKind>())
        {
            var exe = Load(FixturePrograms.PathOf(FileName(kind)), ExecutableBase);
            kernel.AddFile(new FakeImage
            {
                Path = exe.Path,
                Segments = exe.Library.Segments,
                Entry = exe.Address("main"),
                Libraries = [_rtld.Library],
                RtldBase = RtldBase,
                Script = argv => [.. Startup(exe), .. Body(kind, exe, argv)],
            });
        }
    }

    /// <summary>What rtld does before main: hello to the debugger, the initializers, postinit; then main's first instruction.</summary>
    private IEnumerable<FakeStep> Startup(Loaded exe) =>
    [
        new Call(_rtld.Address("r_debug_state")),
        new Call(_rtld.Address("_r_debug_postinit")),
        new Call(exe.Address("main")),
    ];

    private IEnumerable<FakeStep> Body(ProgramKind kind, Loaded exe, IReadOnlyList<string> argv)
    {
        var n = Argument(argv, 1);
        var work = new Call(exe.Address("work"), Counter: exe.Address("calls"));
        switch (kind)
        {
            case ProgramKind.Loop:
                return [.. Enumerable.Repeat(work, n), new Exit(Argument(argv, 2))];
            case ProgramKind.Threads:
                return Threads(work, n);
            case ProgramKind.Sleeper:
                // sleeper.c: for (;;) { work(); usleep(10000); } -- it sleeps between calls, it does not spin.
                return [new Repeat([work, new Sleep(TimeSpan.FromMilliseconds(10))])];
            case ProgramKind.Fork:
                return [new Fork([.. Enumerable.Repeat(work, n), new Exit(7)]), .. Enumerable.Repeat(work, n), new Exit(0)];
            case ProgramKind.Vfork:
                var loop = FixturePrograms.PathOf(FileName(ProgramKind.Loop));
                return [new Fork([new Exec(loop, ["loop", n.ToString(CultureInfo.InvariantCulture)])], Vfork: true), .. Enumerable.Repeat(work, n), new Exit(0)];
            case ProgramKind.Exec:
                return [work, new Exec(FixturePrograms.PathOf(FileName(ProgramKind.Loop)), ["loop", n.ToString(CultureInfo.InvariantCulture)])];
            case ProgramKind.SelfStop:
                return [new Raise(Signals.SIGSTOP), work, new Exit(0)];
            case ProgramKind.Crash:
                return [work, new Raise(Signals.SIGSEGV), new Block()];
            case ProgramKind.Dlopen:
                return Dlopen(work, n);
            case ProgramKind.Stdio:
                // Never runs here: the FreeBSD backend refuses the create options its scenario asks for.
                return [new Exit(0)];
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, null);
        }
    }

    /// <summary>Four threads share N calls as threads.c splits them; their calls interleave.</summary>
    private static IEnumerable<FakeStep> Threads(Call work, int n)
    {
        int[] per = [n / 4 + n % 4, n / 4, n / 4, n / 4];
        var steps = new List<FakeStep> { new SpawnThread(1), new SpawnThread(2), new SpawnThread(3), new SpawnThread(4) };
        for (var round = 0; round < per[0]; round++)
        {
            steps.AddRange(Enumerable.Range(0, 4).Where(t => round < per[t]).Select(t => work with { Thread = t + 1 }));
        }

        steps.AddRange([new EndThread(1), new EndThread(2), new EndThread(3), new EndThread(4), new Exit(0)]);
        return steps;
    }

    /// <summary>dlopen, N rounds of libwork() and work(), dlclose, as rtld reports them (rtld.c: GDB_STATE).</summary>
    private IEnumerable<FakeStep> Dlopen(Call work, int n)
    {
        var library = Load(FixturePrograms.PathOf("libwork.so"), LibraryBase);
        var state = _rtld.Address("r_debug") + 24;
        var hello = new Call(_rtld.Address("r_debug_state"));
        return
        [
            new Store(state, RtAdd), hello, new MapLibrary(library.Library), new Store(state, 0), hello,
            .. Enumerable.Range(0, n).SelectMany(_ => new FakeStep[] { new Call(library.Address("libwork")), work }),
            new Store(state, RtDelete), hello, new UnmapLibrary(library.Path), new Store(state, 0), hello,
            new Exit(0),
        ];
    }

    private static int Argument(IReadOnlyList<string> argv, int index) =>
        argv.Count > index ? int.Parse(argv[index], CultureInfo.InvariantCulture) : 0;

    /// <summary>An ELF file's PT_LOAD segments placed at <paramref name="bias"/> (0 for a fixed-address executable).</summary>
    private static Loaded Load(string path, ulong bias)
    {
        var elf = ElfFile.Open(path);
        bias = elf.IsPositionIndependent ? bias : 0;
        var bytes = File.ReadAllBytes(path);
        var segments = new List<FakeSegment>();
        foreach (var header in elf.ProgramHeaders.Where(h => h.IsLoad))
        {
            var memory = new byte[header.MemorySize];
            bytes.AsSpan((int)header.Offset, (int)header.FileSize).CopyTo(memory);
            var protection = ((header.Flags & 4) != 0 ? Kvme.KVME_PROT_READ : 0)
                | ((header.Flags & 2) != 0 ? Kvme.KVME_PROT_WRITE : 0)
                | ((header.Flags & 1) != 0 ? Kvme.KVME_PROT_EXEC : 0);
            segments.Add(new FakeSegment(bias + header.VirtualAddress, memory, header.Offset, protection));
        }

        return new Loaded(path, bias, elf, new FakeLibrary(path, segments));
    }

    private sealed record Loaded(string Path, ulong Bias, ElfFile Elf, FakeLibrary Library)
    {
        public ulong Address(string symbol) => Elf.Symbols.TryLookup(symbol, out var found)
            ? Bias + found.Value
            : throw new InvalidOperationException($"{Path} does not define {symbol}");
    }
}
