using ProcHex.Ports;

namespace ProcHex.Backends.Fake;

/// <summary>
/// One thing a victim thread does. The kernel executes one step per <see cref="FakeKernel.Step()"/> for one
/// thread; compound steps (loops, dlopen) unfold into the thread's script first. Build scripts with <see cref="Steps"/>.
/// </summary>
public abstract record FakeStep
{
    private protected FakeStep() { }

    /// <summary>Runs the instruction at an absolute address: an int3 there stops a traced victim and kills an untraced one.</summary>
    public sealed record Execute(ulong Address) : FakeStep;

    /// <summary>
    /// Runs the first instruction of a function, found when the step runs; <paramref name="ObjectName"/> null searches
    /// every object. <paramref name="FirstArgument"/>, when given, is the thread's first argument register from then on
    /// (what <see cref="ITracedProcess.ReadFirstArgument"/> reads at the function's entry).
    /// </summary>
    public sealed record Call(string Symbol, string? ObjectName = null, ulong? FirstArgument = null) : FakeStep;

    /// <summary>Repeats <paramref name="Body"/>; a negative count repeats forever.</summary>
    public sealed record Loop(int Count, IReadOnlyList<FakeStep> Body) : FakeStep;

    /// <summary>Creates an untraced child with a copy of the parent's memory as it is at the fork.</summary>
    public sealed record Fork(IReadOnlyList<FakeStep> Child) : FakeStep;

    /// <summary>Creates a child sharing the parent's memory; the parent thread waits until the child execs or exits.</summary>
    public sealed record Vfork(IReadOnlyList<FakeStep> Child) : FakeStep;

    /// <summary>Replaces the image: new memory (no breakpoints), one thread, the image's program with <paramref name="Arguments"/>.</summary>
    public sealed record Exec(FakeImage Image, IReadOnlyList<string> Arguments) : FakeStep;

    /// <summary>Exec of a set-id program: a tracer loses control (<see cref="StopKind.Lost"/>); the program runs on untraced.</summary>
    public sealed record ExecSetId(FakeImage Image, IReadOnlyList<string> Arguments) : FakeStep;

    /// <summary>Loads a library as dlopen does: mapped, then an rtld event.</summary>
    /// <param name="Library">The library.</param>
    public sealed record DlOpen(FakeLibrary Library) : FakeStep;

    /// <summary>Unloads a library as dlclose does.</summary>
    /// <param name="Library">The library.</param>
    public sealed record DlClose(FakeLibrary Library) : FakeStep;

    /// <summary>Starts a thread; null <paramref name="Tid"/> takes the next free id.</summary>
    public sealed record SpawnThread(IReadOnlyList<FakeStep> Script, int? Tid = null) : FakeStep;

    /// <summary>Ends the current thread (the last one's end ends the process).</summary>
    public sealed record ThreadExit : FakeStep;

    /// <summary>
    /// Sets the thread's registers (its rip stays its PC), as the code before a call would: the arguments a breakpoint
    /// handler then reads from its hit context.
    /// </summary>
    public sealed record SetRegisters(X64Registers Registers) : FakeStep;

    /// <summary>Stores bytes in the victim's memory, mapping the pages if needed: a string, a return address on a stack.</summary>
    public sealed record Store(ulong Address, IReadOnlyList<byte> Bytes) : FakeStep;

    /// <summary>Exits the whole process with <paramref name="Code"/>.</summary>
    /// <param name="Code">The exit status.</param>
    public sealed record Exit(int Code) : FakeStep;

    /// <summary>
    /// Writes "argv0=ARGV0 cwd=DIR" and a newline to <paramref name="Descriptor"/> (1 or 2): what the catalogue's print
    /// program does, so that a scenario sees argv[0] and the working directory of a create reach the program. A pipe
    /// receives it; any other target drops it.
    /// </summary>
    public sealed record Describe(int Descriptor) : FakeStep;

    /// <summary>Raises a fatal signal: a traced victim stops for it first and dies when resumed.</summary>
    public sealed record Signal(int Number) : FakeStep;

    /// <summary>Another tool stops the victim (group-stop) until <see cref="FakeKernel.ContinueByOthers"/> or SIGCONT.</summary>
    public sealed record StopByOthers : FakeStep;

    /// <summary>Blocks until every child has exited, then reaps them.</summary>
    public sealed record WaitChildren : FakeStep;

    internal sealed record RtldEvent(RtldEventKind Kind, RtldState State) : FakeStep;

    internal sealed record MapNeeded : FakeStep;

    internal sealed record MapLibrary(FakeLibrary Library) : FakeStep;

    internal sealed record UnmapLibrary(FakeLibrary Library) : FakeStep;

    /// <summary>The set-id image of a create: control is lost before the first instruction runs.</summary>
    internal sealed record LoseControl : FakeStep;
}

/// <summary>Short names for script steps: <c>Steps.Loop(3, Steps.Call("work"))</c>.</summary>
public static class Steps
{
    /// <summary>Executes the instruction at <paramref name="address"/> (a breakpoint there traps).</summary>
    /// <param name="address">The instruction's address.</param>
    public static FakeStep Execute(ulong address) => new FakeStep.Execute(address);

    /// <summary>Calls function <paramref name="symbol"/> (in <paramref name="objectName"/>, or searched executable first).</summary>
    /// <param name="symbol">The function.</param>
    /// <param name="objectName">Its object; null to search.</param>
    public static FakeStep Call(string symbol, string? objectName = null) => new FakeStep.Call(symbol, objectName);

    /// <summary>A call passing <paramref name="firstArgument"/>: <c>__libc_start_main(main, ...)</c>.</summary>
    public static FakeStep CallWith(string symbol, ulong firstArgument, string? objectName = null) => new FakeStep.Call(symbol, objectName, firstArgument);

    /// <summary>Runs <paramref name="body"/> <paramref name="count"/> times.</summary>
    /// <param name="count">How many times.</param>
    /// <param name="body">The steps.</param>
    public static FakeStep Loop(int count, params FakeStep[] body) => new FakeStep.Loop(count, body);

    /// <summary>Runs <paramref name="body"/> until the process ends.</summary>
    /// <param name="body">The steps.</param>
    public static FakeStep Forever(params FakeStep[] body) => new FakeStep.Loop(-1, body);

    /// <summary>Forks; the child runs <paramref name="child"/>.</summary>
    /// <param name="child">The child's steps.</param>
    public static FakeStep Fork(params FakeStep[] child) => new FakeStep.Fork(child);

    /// <summary>Vforks: the parent waits until the child runs <paramref name="child"/> to an exec or exit.</summary>
    /// <param name="child">The child's steps.</param>
    public static FakeStep Vfork(params FakeStep[] child) => new FakeStep.Vfork(child);

    /// <summary>Execs <paramref name="image"/> with <paramref name="arguments"/>.</summary>
    /// <param name="image">The new program.</param>
    /// <param name="arguments">argv after argv[0].</param>
    public static FakeStep Exec(FakeImage image, params string[] arguments) => new FakeStep.Exec(image, Argv(image, arguments));

    /// <summary>Execs a set-id <paramref name="image"/>: a tracer loses control.</summary>
    /// <param name="image">The new program.</param>
    /// <param name="arguments">argv after argv[0].</param>
    public static FakeStep ExecSetId(FakeImage image, params string[] arguments) => new FakeStep.ExecSetId(image, Argv(image, arguments));

    /// <summary>Loads <paramref name="library"/> as dlopen does.</summary>
    /// <param name="library">The library.</param>
    public static FakeStep DlOpen(FakeLibrary library) => new FakeStep.DlOpen(library);

    /// <summary>Unloads <paramref name="library"/> as dlclose does.</summary>
    /// <param name="library">The library.</param>
    public static FakeStep DlClose(FakeLibrary library) => new FakeStep.DlClose(library);

    /// <summary>Starts a thread running <paramref name="script"/>.</summary>
    /// <param name="script">Its steps.</param>
    public static FakeStep SpawnThread(params FakeStep[] script) => new FakeStep.SpawnThread(script);

    /// <summary>Starts thread <paramref name="tid"/> running <paramref name="script"/>.</summary>
    /// <param name="tid">Its thread id.</param>
    /// <param name="script">Its steps.</param>
    public static FakeStep SpawnThread(int tid, params FakeStep[] script) => new FakeStep.SpawnThread(script, tid);

    /// <summary>Ends the current thread.</summary>
    public static FakeStep ThreadExit() => new FakeStep.ThreadExit();

    /// <summary>Sets the thread's registers, as the code before a call would.</summary>
    /// <param name="registers">The registers a hit context then reads.</param>
    public static FakeStep SetRegisters(X64Registers registers) => new FakeStep.SetRegisters(registers);

    /// <summary>Stores <paramref name="bytes"/> at <paramref name="address"/> in the victim's memory.</summary>
    /// <param name="address">Where.</param>
    /// <param name="bytes">What.</param>
    public static FakeStep Store(ulong address, params byte[] bytes) => new FakeStep.Store(address, bytes);

    /// <summary>Exits the process with <paramref name="code"/>.</summary>
    /// <param name="code">The exit status.</param>
    public static FakeStep Exit(int code) => new FakeStep.Exit(code);

    /// <summary>Writes "argv0=ARGV0 cwd=DIR" to <paramref name="descriptor"/> (what the create options set up).</summary>
    /// <param name="descriptor">The descriptor to write to (1: standard output).</param>
    public static FakeStep Describe(int descriptor) => new FakeStep.Describe(descriptor);

    /// <summary>Raises fatal signal <paramref name="number"/>.</summary>
    /// <param name="number">The signal.</param>
    public static FakeStep Signal(int number) => new FakeStep.Signal(number);

    /// <summary>Stops the process as someone else's SIGSTOP would (S20).</summary>
    public static FakeStep StopByOthers() => new FakeStep.StopByOthers();

    /// <summary>Waits until every child has ended, reaping them.</summary>
    public static FakeStep WaitChildren() => new FakeStep.WaitChildren();

    /// <summary>Runs forever calling <c>work</c>: a victim to grab.</summary>
    public static FakeStep Spin(string function = "work") => Forever(Call(function));

    /// <inheritdoc cref="Spin"/>
    public static FakeStep Sleep(string function = "work") => Spin(function);

    private static IReadOnlyList<string> Argv(FakeImage image, string[] arguments)
    {
        ArgumentNullException.ThrowIfNull(image);
        return [image.Path, .. arguments];
    }
}
