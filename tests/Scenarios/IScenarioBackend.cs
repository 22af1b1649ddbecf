using ProcHex.Ports;

namespace ProcHex.Scenarios;

/// <summary>
/// What the backend-parameterized scenario suite needs from a backend: the tracer, the catalogue of test
/// programs, and a way to poke and observe processes from outside (as another tool or the user would).
/// The fake implements it over its scripted kernel; Linux and FreeBSD over real processes.
/// </summary>
public interface IScenarioBackend : IAsyncDisposable
{
    /// <summary>"Fake", "Linux", "FreeBSD": also the value of the Backend trait.</summary>
    string Name { get; }

    IProcessTracer Tracer { get; }

    /// <summary>
    /// A SIGKILL sent to a victim held in a trace stop waits until the tracer resumes it (FreeBSD: tdsendsignal does
    /// nothing more for a traced, stopped process), so an idle victim killed from outside dies only when continued.
    /// </summary>
    bool DefersKillOfStoppedVictims => false;

    /// <summary>
    /// Whether creates honour <see cref="CreateOptions"/>' working directory, stdio, ASLR and limits (issue 22 item 1);
    /// a backend that does not refuses them with <see cref="TracerErrorKind.Unsupported"/>.
    /// </summary>
    bool SupportsCreateOptions => true;

    /// <summary>
    /// Runs a scenario body. The fake runs it on its deterministic single-threaded scheduler, advancing the
    /// kernel whenever the body waits; real backends just await it (with a generous timeout).
    /// </summary>
    Task RunAsync(Func<Task> body);

    /// <summary>The file and fixed argv prefix of a catalogue program.</summary>
    ScenarioProgram Program(ProgramKind kind);

    /// <summary>Starts a catalogue program untraced (for grab scenarios) and returns its pid.</summary>
    int Spawn(ProgramKind kind, params string[] arguments);

    /// <summary>Sends a signal from outside (SIGSTOP, SIGCONT, SIGKILL), as another tool would.</summary>
    void SendSignal(int pid, ExternalSignal signal);

    /// <summary>How the process looks from outside right now.</summary>
    ProcessObservation Observe(int pid);

    /// <summary>
    /// Waits (advancing the fake kernel, or sleeping on real ones) until <paramref name="condition"/> holds for
    /// the observation of <paramref name="pid"/>; throws TimeoutException with the last observation otherwise.
    /// </summary>
    Task<ProcessObservation> WaitUntilAsync(int pid, Func<ProcessObservation, bool> condition);

    /// <summary>True when every byte the tracer may have patched in <paramref name="pid"/>'s text equals the program file's.</summary>
    bool TextIsOriginal(int pid);

    /// <summary>Reads the 8-byte counter the catalogue programs keep in the global <c>calls</c>.</summary>
    long ReadCallCounter(ITracedProcess process);
}

/// <summary>A catalogue program as this backend runs it.</summary>
/// <param name="File">Path handed to create.</param>
/// <param name="ArgumentsPrefix">argv before the scenario's own arguments (argv[0] first).</param>
public sealed record ScenarioProgram(string File, IReadOnlyList<string> ArgumentsPrefix)
{
    public IReadOnlyList<string> WithArguments(params string[] arguments) => [.. ArgumentsPrefix, .. arguments];
}

/// <summary>
/// The test programs every backend provides. Each increments a global 8-byte <c>calls</c> counter inside
/// <c>work()</c> and exits with the status in its last argument (default 0) unless said otherwise.
/// </summary>
public enum ProgramKind
{
    /// <summary>argv: N [STATUS]. Calls <c>work()</c> N times, then exits with STATUS.</summary>
    Loop,

    /// <summary>argv: N. Four threads, N calls to <c>work()</c> in all, then exit 0.</summary>
    Threads,

    /// <summary>Runs forever, calling <c>work()</c> about every 10 ms. For grabs.</summary>
    Sleeper,

    /// <summary>argv: N. Forks; the child calls <c>work()</c> N times and exits 7; the parent reaps it, calls <c>work()</c> N times, exits 0.</summary>
    Fork,

    /// <summary>argv: N. vforks; the child execs Loop N; the parent reaps it, calls <c>work()</c> N times, exits 0.</summary>
    Vfork,

    /// <summary>argv: N. Calls <c>work()</c> once, then execs Loop N.</summary>
    Exec,

    /// <summary>Stops itself with SIGSTOP, then (once continued) calls <c>work()</c> once and exits 0.</summary>
    SelfStop,

    /// <summary>Calls <c>work()</c> once, then dies of SIGSEGV.</summary>
    Crash,

    /// <summary>argv: N. dlopens the test library, calls its <c>libwork()</c> N times, dlcloses it, exits 0.</summary>
    Dlopen,

    /// <summary>argv: print. Writes "argv0=ARGV0 cwd=DIR" and a newline on standard output, exits 0 (issue 22 item 1).</summary>
    Stdio,
}

public enum ExternalSignal
{
    Stop,
    Continue,
    Kill,
}

/// <summary>A process as seen from outside.</summary>
/// <param name="Exists">Still has a pid (zombies included).</param>
/// <param name="Zombie">Dead, not yet reaped.</param>
/// <param name="Stopped">In a stopped or traced-stop state.</param>
/// <param name="Traced">Some tracer is attached (TracerPid non-zero on Linux).</param>
public sealed record ProcessObservation(bool Exists, bool Zombie, bool Stopped, bool Traced)
{
    public static readonly ProcessObservation Gone = new(false, false, false, false);
}
