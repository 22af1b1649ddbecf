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

    [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "pid {Pid}: the emulated step over the breakpoint at 0x{Address:x} could not be applied ({Reason}); this site's hits that cannot be emulated are stepped out of line (the other LWPs suspended), said once per site")]
    public static partial void EmulationFellBack(ILogger logger, int pid, ulong address, string reason);
}
