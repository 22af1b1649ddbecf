using Microsoft.Extensions.Logging;

namespace ProcHex;

/// <summary>The debug lines DTrace prints with dt_dprintf, as source-generated log messages.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Debug, "pid {Pid}: created")]
    public static partial void Created(ILogger logger, int pid);

    [LoggerMessage(2, LogLevel.Debug, "pid {Pid}: grabbed ({Mode})")]
    public static partial void Grabbed(ILogger logger, int pid, GrabMode mode);

    [LoggerMessage(3, LogLevel.Debug, "pid {Pid}: grabbed (cached)")]
    public static partial void GrabbedCached(ILogger logger, int pid);

    [LoggerMessage(4, LogLevel.Debug, "pid {Pid}: upgrading read-only handle for control")]
    public static partial void Upgrading(ILogger logger, int pid);

    [LoggerMessage(5, LogLevel.Debug, "pid {Pid}: releasing ({Mode})")]
    public static partial void Releasing(ILogger logger, int pid, Ports.ReleaseMode mode);

    [LoggerMessage(6, LogLevel.Debug, "pid {Pid}: stopped showing {Reason} at 0x{Pc:x} (tid {Tid})")]
    public static partial void StoppedShowing(ILogger logger, int pid, Ports.StopReason reason, ulong pc, int tid);

    [LoggerMessage(7, LogLevel.Debug, "pid {Pid}: spurious breakpoint wakeup for 0x{Pc:x}")]
    public static partial void SpuriousBreakpoint(ILogger logger, int pid, ulong pc);

    [LoggerMessage(8, LogLevel.Debug, "pid {Pid}: hit breakpoint at 0x{Address:x} ({Hits})")]
    public static partial void BreakpointHit(ILogger logger, int pid, ulong address, long hits);

    [LoggerMessage(9, LogLevel.Debug, "pid {Pid}: breakpoint at 0x{Address:x} not planted: {Reason}")]
    public static partial void BreakpointNotPlanted(ILogger logger, int pid, ulong address, string reason);

    [LoggerMessage(10, LogLevel.Warning, "pid {Pid}: breakpoint at 0x{Address:x} could not be removed: {Reason}")]
    public static partial void BreakpointNotRemoved(ILogger logger, int pid, ulong address, string reason);

    [LoggerMessage(11, LogLevel.Debug, "pid {Pid}: parked idle at {Why}")]
    public static partial void Parked(ILogger logger, int pid, Victims.StopEvents why);

    [LoggerMessage(12, LogLevel.Debug, "pid {Pid}: rtld event {Kind} state {State}")]
    public static partial void RtldEvent(ILogger logger, int pid, Ports.RtldEventKind kind, Ports.RtldState state);

    [LoggerMessage(13, LogLevel.Debug, "pid {Pid}: rtld: {Reason}")]
    public static partial void RtldUnavailable(ILogger logger, int pid, string reason);

    [LoggerMessage(14, LogLevel.Debug, "pid {Pid}: main not found ({Reason}); {Fallback}")]
    public static partial void NoMain(ILogger logger, int pid, string reason, string fallback);

    [LoggerMessage(15, LogLevel.Debug, "pid {Pid}: died ({Exit})")]
    public static partial void Died(ILogger logger, int pid, Ports.ExitStatus exit);

    [LoggerMessage(16, LogLevel.Debug, "pid {Pid}: control lost: {Reason}")]
    public static partial void Lost(ILogger logger, int pid, string reason);

    [LoggerMessage(17, LogLevel.Warning, "pid {Pid}: {Operation} failed: {Reason}")]
    public static partial void OperationFailed(ILogger logger, int pid, string operation, string reason);

    [LoggerMessage(18, LogLevel.Warning, "pid {Pid}: breakpoint handler at 0x{Address:x} threw")]
    public static partial void HandlerFailed(ILogger logger, Exception exception, int pid, ulong address);

    [LoggerMessage(19, LogLevel.Debug, "pid {Pid}: waiting for someone else to resume it")]
    public static partial void HeldByOthers(ILogger logger, int pid);

    [LoggerMessage(71, LogLevel.Debug, "pid {Pid}: a stop answered while someone else holds it: it runs on at their resume")]
    public static partial void AnsweredWhileHeld(ILogger logger, int pid);

    [LoggerMessage(20, LogLevel.Debug, "pid {Pid}: exec completed; breakpoints forgotten, image re-read")]
    public static partial void ExecCompleted(ILogger logger, int pid);

    [LoggerMessage(60, LogLevel.Debug, "pid {Pid}: main at 0x{Address:x}, from {How}")]
    public static partial void MainFound(ILogger logger, int pid, ulong address, string how);

    [LoggerMessage(61, LogLevel.Debug, "pid {Pid}: {What}")]
    public static partial void MainSearch(ILogger logger, int pid, string what);

    [LoggerMessage(21, LogLevel.Debug, "pid {Pid}: indirect function {Name} (resolver 0x{Resolver:x}) is implemented at 0x{Implementation:x}, found {How}")]
    public static partial void IndirectFunctionResolved(ILogger logger, int pid, string name, ulong resolver, ulong implementation, string how);

    [LoggerMessage(70, LogLevel.Information, "pid {Pid}: control refused ({Reason}); holding it read-only instead (GrabMode.ControlOrReadOnly)")]
    public static partial void FellBackToReadOnly(ILogger logger, int pid, string reason);
}
