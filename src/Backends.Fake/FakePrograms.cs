using System.Globalization;

namespace ProcHex.Backends.Fake;

/// <summary>
/// The test programs every backend provides to the scenario suite, as fake images. Each keeps an 8-byte
/// global <c>calls</c> that <c>work()</c> (and the library's <c>libwork()</c>) increments, and exits with the
/// status in its last argument where the catalogue says so. Their <c>main</c> cannot take an in-victim counter's jump
/// (a branch lands in its first bytes), so counting it falls back to a trap; <c>work</c> and <c>libwork</c> can.
/// </summary>
public sealed class FakePrograms
{
    /// <summary>Where the stock programs live in the fake file system.</summary>
    public const string Directory = "/usr/libexec/prochex-test";

    /// <summary>Builds the stock programs and their library.</summary>
    public FakePrograms()
    {
        Library = new FakeLibraryBuilder($"{Directory}/libprochex-test.so").Function("libwork", counts: "calls").Build();
        Loop = Program("loop", args => [Steps.Loop(Number(args, 1, 1), Steps.Call("work")), Steps.Exit(Number(args, 2, 0))]);
        Threads = Program("threads", args => ThreadsScript(Number(args, 1, 4)));
        Sleeper = Program("sleeper", _ => [Steps.Spin()]);
        Fork = Program("fork", args =>
        [
            Steps.Fork(Steps.Loop(Number(args, 1, 1), Steps.Call("work")), Steps.Exit(7)),
            Steps.WaitChildren(),
            Steps.Loop(Number(args, 1, 1), Steps.Call("work")),
            Steps.Exit(0),
        ]);
        Vfork = Program("vfork", args =>
        [
            Steps.Vfork(Steps.Exec(Loop, Number(args, 1, 1).ToString(CultureInfo.InvariantCulture))),
            Steps.WaitChildren(),
            Steps.Loop(Number(args, 1, 1), Steps.Call("work")),
            Steps.Exit(0),
        ]);
        Stdio = Program("stdio", _ => [Steps.Describe(1), Steps.Exit(0)]);
        Exec = Program("exec", args => [Steps.Call("work"), Steps.Exec(Loop, Number(args, 1, 1).ToString(CultureInfo.InvariantCulture))]);
        SelfStop = Program("selfstop", _ => [Steps.StopByOthers(), Steps.Call("work"), Steps.Exit(0)]);
        Crash = Program("crash", _ => [Steps.Call("work"), Steps.Signal(Signals.Segv)]);
        Dlopen = Program("dlopen", args =>
        [
            Steps.DlOpen(Library),
            Steps.Loop(Number(args, 1, 1), Steps.Call("libwork")),
            Steps.DlClose(Library),
            Steps.Exit(0),
        ]);
    }

    /// <summary>argv: N [STATUS]. N calls to work(), exit STATUS.</summary>
    public FakeImage Loop { get; }

    /// <summary>argv: N. Four threads, N calls to work() in all, exit 0 when the last thread ends.</summary>
    public FakeImage Threads { get; }

    /// <summary>Calls work() forever.</summary>
    public FakeImage Sleeper { get; }

    /// <summary>argv: N. The child calls work() N times and exits 7; the parent reaps it, calls work() N times, exits 0.</summary>
    public FakeImage Fork { get; }

    /// <summary>argv: N. The vfork child execs loop N; the parent reaps it, calls work() N times, exits 0.</summary>
    public FakeImage Vfork { get; }

    /// <summary>argv: N. Calls work() once, then execs loop N.</summary>
    public FakeImage Exec { get; }

    /// <summary>Stops itself (as another tool would), then calls work() once and exits 0.</summary>
    public FakeImage SelfStop { get; }

    /// <summary>Calls work() once, then dies of SIGSEGV.</summary>
    public FakeImage Crash { get; }

    /// <summary>argv: N. dlopens <see cref="Library"/>, calls libwork() N times, dlcloses it, exits 0.</summary>
    public FakeImage Dlopen { get; }

    /// <summary>argv: print. Writes "argv0=ARGV0 cwd=DIR" on standard output, then exits 0 (issue 22 item 1).</summary>
    public FakeImage Stdio { get; }

    /// <summary>The library every stock program needs.</summary>
    public FakeLibrary Library { get; }

    /// <summary>Every stock program, to register in one call.</summary>
    public IReadOnlyList<FakeImage> All => [Loop, Threads, Sleeper, Fork, Vfork, Exec, SelfStop, Crash, Dlopen, Stdio];

    /// <summary>Makes every program executable on <paramref name="kernel"/>.</summary>
    public FakePrograms RegisterWith(FakeKernel kernel)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        kernel.Register([.. All]);
        return this;
    }

    private static FakeImage Program(string name, Func<IReadOnlyList<string>, IReadOnlyList<FakeStep>> program) =>
        new FakeImageBuilder($"{Directory}/{name}")
            .Function("main")
            .Unpatchable("main")
            .Function("work", counts: "calls")
            .Global("calls")
            .Program(program)
            .Build();

    private static List<FakeStep> ThreadsScript(int calls)
    {
        const int threads = 4;
        FakeStep Share(int index) => Steps.Loop((calls / threads) + (index < calls % threads ? 1 : 0), Steps.Call("work"));

        // The main thread ends with ThreadExit: the process exits 0 only when the last thread is done.
        return [Steps.SpawnThread(Share(1)), Steps.SpawnThread(Share(2)), Steps.SpawnThread(Share(3)), Share(0), Steps.ThreadExit()];
    }

    private static int Number(IReadOnlyList<string> arguments, int index, int fallback) =>
        arguments.Count > index && int.TryParse(arguments[index], NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value : fallback;
}
