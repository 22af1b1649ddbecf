using Microsoft.Extensions.Logging;

namespace ProcHex.Backends.FreeBSD;

internal static partial class Log
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Debug, Message = "pid {Pid}: stop swallowed ({What})")]
    public static partial void Swallowed(ILogger logger, int pid, string what);

    [LoggerMessage(EventId = 2, Level = LogLevel.Debug, Message = "pid {Pid}: fork child {Child} cleaned of {Count} breakpoints and detached")]
    public static partial void ForkChildDetached(ILogger logger, int pid, int child, int count);

    [LoggerMessage(EventId = 3, Level = LogLevel.Debug, Message = "pid {Pid}: released ({Mode})")]
    public static partial void Released(ILogger logger, int pid, string mode);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "pid {Pid}: {What} failed during release: {Reason}")]
    public static partial void ReleaseStepFailed(ILogger logger, int pid, string what, string reason);
}
