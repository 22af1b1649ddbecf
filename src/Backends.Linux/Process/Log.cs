using Microsoft.Extensions.Logging;

namespace ProcHex.Backends.Linux;

/// <summary>Every log line the Linux backend writes, source-generated.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Debug, Message = "owner thread started; wake process {WakePid}")]
    public static partial void OwnerStarted(ILogger logger, int wakePid);

    [LoggerMessage(EventId = 2, Level = LogLevel.Error, Message = "owner thread: handling status {Status} of thread {Tid} failed")]
    public static partial void DispatchFailed(ILogger logger, Exception exception, int tid, string status);

    [LoggerMessage(EventId = 3, Level = LogLevel.Debug, Message = "pid {Pid}: created {File}")]
    public static partial void Created(ILogger logger, int pid, string file);

    [LoggerMessage(EventId = 4, Level = LogLevel.Debug, Message = "pid {Pid}: grabbed ({Threads} threads)")]
    public static partial void Grabbed(ILogger logger, int pid, int threads);

    [LoggerMessage(EventId = 5, Level = LogLevel.Debug, Message = "pid {Pid}: released ({Mode})")]
    public static partial void Released(ILogger logger, int pid, string mode);

    [LoggerMessage(EventId = 6, Level = LogLevel.Debug, Message = "pid {Pid}: fork child {Child} detached with breakpoints removed")]
    public static partial void ForkChildDetached(ILogger logger, int pid, int child);

    [LoggerMessage(EventId = 7, Level = LogLevel.Warning, Message = "pid {Pid}: {What} failed: {Reason}")]
    public static partial void BestEffortFailed(ILogger logger, int pid, string what, string reason);

    [LoggerMessage(EventId = 8, Level = LogLevel.Trace, Message = "pid {Pid}: thread {Tid} {Status}")]
    public static partial void ThreadStatus(ILogger logger, int pid, int tid, string status);

    [LoggerMessage(EventId = 9, Level = LogLevel.Debug, Message = "owner thread: wake process died ({Status}); starting another")]
    public static partial void WakeRespawn(ILogger logger, string status);

    [LoggerMessage(EventId = 10, Level = LogLevel.Trace, Message = "pid {Pid}: {What}")]
    public static partial void Step(ILogger logger, int pid, string what);

    [LoggerMessage(EventId = 13, Level = LogLevel.Debug, Message = "owner thread: SIGCHLD handler told to skip child stops (SA_NOCLDSTOP): ptrace stops no longer wake it")]
    public static partial void ChildStopSignalsSkipped(ILogger logger);

    [LoggerMessage(EventId = 14, Level = LogLevel.Information, Message = "pid {Pid}: the emulated step over the breakpoint at 0x{Address:x} could not be applied ({Reason}); this site's hits that cannot be emulated are stepped out of line (all threads stopped), said once per site")]
    public static partial void EmulationFellBack(ILogger logger, int pid, ulong address, string reason);

    [LoggerMessage(EventId = 11, Level = LogLevel.Error, Message = "owner thread: a deferred completion failed")]
    public static partial void DeferredFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 12, Level = LogLevel.Warning, Message = "pid {Pid}: answering a stop kept the ptrace owner thread for {Milliseconds} ms (every victim waited meanwhile); this victim's stops are answered on the thread pool from now on. Handlers that block belong on the thread pool (leave UseLinux(o => o.AnswerStopsOnOwnerThread) off)")]
    public static partial void SlowAnswer(ILogger logger, int pid, long milliseconds);

    [LoggerMessage(EventId = 30, Level = LogLevel.Information, Message = "raised the soft limit on open files (RLIMIT_NOFILE) from {Before} to the hard limit {After}: each victim held for control keeps /proc/PID/mem open")]
    public static partial void OpenFileLimitRaised(ILogger logger, ulong before, ulong after);

    [LoggerMessage(EventId = 31, Level = LogLevel.Warning, Message = "the limit on open files (RLIMIT_NOFILE) could not be read or raised: at most about that many victims can be held for control")]
    public static partial void OpenFileLimitUnchanged(ILogger logger);
}
