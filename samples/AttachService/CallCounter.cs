using System.Diagnostics.Metrics;
using ProcHex;

namespace AttachService;

/// <summary>Attaches to the pid the command line names, counts one function until the host stops, then lets go.</summary>
internal sealed partial class CallCounter(
    ProcHexSession session,
    Meter meter,
    IConfiguration configuration,
    IHostApplicationLifetime lifetime,
    ILogger<CallCounter> logger) : BackgroundService
{
    public const string MeterName = "AttachService";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var pid = configuration.GetValue<int?>("pid")
            ?? throw new InvalidOperationException("name the process to attach to: --pid PID");
        var symbol = configuration["symbol"] ?? "malloc";
        if (configuration.GetValue<int?>("seconds") is { } seconds)
        {
            _ = Task.Delay(TimeSpan.FromSeconds(seconds), stoppingToken)
                .ContinueWith(_ => lifetime.StopApplication(), TaskScheduler.Default);
        }

        // begin-snippet: attach
        var victim = await session.GrabAsync(pid, GrabMode.Control, stoppingToken);
        try
        {
            var calls = await session.SetPendingBreakpointAsync(victim, symbol, hit => { });
            meter.CreateObservableCounter("attach_service.calls", () => calls.Hits, "{call}", $"calls to {symbol}");
            session.Continue(victim);
            Attached(logger, pid, symbol);

            try
            {
                // Until the host stops or the process ends; a notification for another pid is not ours.
                await foreach (var notification in session.ReadNotificationsAsync(stoppingToken))
                {
                    if (notification.Pid == pid && notification.Kind is NotificationKind.Exited or NotificationKind.Lost)
                    {
                        Ended(logger, pid, notification.Exit?.ToString() ?? notification.Message ?? "ended");
                        break;
                    }
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                // Ctrl-C, SIGTERM or --seconds: stop counting and let go.
            }

            Counted(logger, pid, symbol, calls.Hits);
        }
        finally
        {
            await session.ReleaseAsync(victim);  // detaches: the process runs on untouched
            Released(logger, pid);
        }
        // end-snippet
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "attached to pid {Pid}, counting {Symbol}")]
    private static partial void Attached(ILogger logger, int pid, string symbol);

    [LoggerMessage(Level = LogLevel.Information, Message = "pid {Pid}: {How}")]
    private static partial void Ended(ILogger logger, int pid, string how);

    [LoggerMessage(Level = LogLevel.Information, Message = "pid {Pid}: {Calls} calls to {Symbol}")]
    private static partial void Counted(ILogger logger, int pid, string symbol, long calls);

    [LoggerMessage(Level = LogLevel.Information, Message = "released pid {Pid}, it runs on")]
    private static partial void Released(ILogger logger, int pid);
}
