namespace ProcHex.Backends.Linux.Simulation.Kernel;

/// <summary>
/// One instruction of a fake program. Each step occupies one byte of text (see <see cref="FakeImage"/>), so an
/// int3 planted over it is met exactly as on hardware.
/// </summary>
internal abstract record ProgramStep;

/// <summary>Run in user space for <paramref name="Ticks"/> turns, then go on to the next step.</summary>
internal sealed record Compute(int Ticks) : ProgramStep;

/// <summary>Sleep interruptibly for <paramref name="Ticks"/> turns (state S).</summary>
internal sealed record Sleep(int Ticks) : ProgramStep;

/// <summary>Continue at step <paramref name="Index"/> of the same function: a loop.</summary>
internal sealed record Jump(int Index) : ProgramStep;

/// <summary>clone(CLONE_THREAD): a new thread of this process runs <paramref name="Function"/>.</summary>
internal sealed record SpawnThread(string Function) : ProgramStep;

/// <summary>fork or vfork: a new process, a copy (or, for vfork, a borrower) of this one, runs <paramref name="Function"/>.</summary>
internal sealed record Fork(string Function, bool Vfork = false) : ProgramStep;

/// <summary>execve of <paramref name="Image"/>.</summary>
internal sealed record Exec(FakeImage Image) : ProgramStep;

/// <summary>exit(2): this thread alone ends.</summary>
internal sealed record ExitThread(int Code) : ProgramStep;

/// <summary>exit_group(2): the whole process ends.</summary>
internal sealed record ExitGroup(int Code) : ProgramStep;

/// <summary>tgkill(getpid(), gettid(), <paramref name="Signal"/>).</summary>
internal sealed record RaiseSignal(int Signal) : ProgramStep;

/// <summary>
/// <c>push %rbp</c> (text byte 0x55, which the adapter's emulator decodes): rsp goes down 8 and rbp is stored there.
/// The stack below rsp need not be mapped: the CPU's own fault grows it (the store maps its bytes), while the tracer's
/// write there fails, as a write through /proc/PID/mem below a stack that has yet to grow can.
/// </summary>
internal sealed record PushFrame : ProgramStep;
