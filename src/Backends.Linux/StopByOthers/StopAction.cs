namespace ProcHex.Backends.Linux;

/// <summary>What <see cref="StopByOthers"/> asks the owner thread to do; <see cref="Tid"/> is 0 for the victim as a whole.</summary>
internal readonly record struct StopAction(StopActionKind Kind, int Tid)
{
    public static StopAction ReportStopped => new(StopActionKind.ReportStopped, 0);

    public static StopAction ReportResumed => new(StopActionKind.ReportResumed, 0);

    public static StopAction RestoreOptionsAll => new(StopActionKind.RestoreOptions, 0);

    public static StopAction Park(int tid) => new(StopActionKind.Park, tid);

    public static StopAction Resume(int tid) => new(StopActionKind.Resume, tid);

    public static StopAction RestoreOptions(int tid) => new(StopActionKind.RestoreOptions, tid);

    public static StopAction DropExitKill(int tid) => new(StopActionKind.DropExitKill, tid);

    /// <inheritdoc/>
    public override string ToString() => Tid == 0 ? Kind.ToString() : $"{Kind} {Tid}";
}

internal enum StopActionKind
{
    /// <summary>PTRACE_SETOPTIONS without EXITKILL, then PTRACE_LISTEN; report the outcome with ListenReturned.</summary>
    Park,

    /// <summary>Resume the thread if nothing else holds it (PTRACE_CONT).</summary>
    Resume,

    /// <summary>PTRACE_SETOPTIONS with the victim's own options (EXITKILL back for a created victim); Tid 0: every thread.</summary>
    RestoreOptions,

    /// <summary>PTRACE_SETOPTIONS without EXITKILL: a tracer crash while the stop lasts must leave the victim stopped.</summary>
    DropExitKill,

    /// <summary>Tell the core: stopped by someone else.</summary>
    ReportStopped,

    /// <summary>Hold every thread and tell the core: resumed by someone else.</summary>
    ReportResumed,
}
