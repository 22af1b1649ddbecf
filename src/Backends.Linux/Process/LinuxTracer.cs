using ProcHex.Ports;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ProcHex.Backends.Linux;

/// <summary>The Linux ptrace backend (x86-64). All tracing runs on one <see cref="OwnerThread"/>.</summary>
public sealed class LinuxTracer : IProcessTracer
{
    private readonly ILogger _logger;
    private readonly Lazy<OwnerThread> _owner;
    private readonly LinuxBackendOptions _options;
    private readonly ProcHexMetrics _metrics;

    /// <summary>The Linux tracer with the default <see cref="LinuxBackendOptions"/>; throws <see cref="PlatformNotSupportedException"/> off x86-64 Linux.</summary>
    /// <param name="loggerFactory">Where its diagnostics go; none when null.</param>
    public LinuxTracer(ILoggerFactory? loggerFactory = null)
        : this(null, loggerFactory)
    {
    }

    /// <summary>
    /// The Linux tracer with <paramref name="options"/>; throws <see cref="PlatformNotSupportedException"/> off x86-64
    /// Linux. The ptrace owner thread is the process's, shared by every tracer: its queue delay goes to
    /// <see cref="ProcHexMetrics.Shared"/>.
    /// </summary>
    /// <param name="options">Step-over and owner-thread tunables; the defaults when null.</param>
    /// <param name="loggerFactory">Where its diagnostics go; none when null.</param>
    /// <param name="metrics">Where it counts its step-overs; <see cref="ProcHexMetrics.Shared"/> when null.</param>
    public LinuxTracer(LinuxBackendOptions? options, ILoggerFactory? loggerFactory = null, ProcHexMetrics? metrics = null)
    {
        EnsureSupported();
        _options = options ?? new LinuxBackendOptions();
        _metrics = metrics ?? ProcHexMetrics.Shared;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<LinuxTracer>();
        _owner = new Lazy<OwnerThread>(StartOwner);
    }

    /// <summary>The owner for this tracer's proc root, with the descriptor budget raised first when asked (issue 22 item 2).</summary>
    private OwnerThread StartOwner()
    {
        var kernel = LinuxKernel.For(_options.ProcRoot);
        if (_options.RaiseOpenFileLimit)
        {
            OpenFileBudget.Raise(kernel, _logger);
        }

        return OwnerThread.GetShared(_logger, kernel);
    }

    /// <inheritdoc/>
    public string Name => "linux";

    /// <inheritdoc/>
    public async ValueTask<ITracedProcess> CreateAsync(ProcessStartRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        cancellationToken.ThrowIfCancellationRequested();
        return await Abandonable(_owner.Value.InvokeAsync(() => Configured(Trampoline.Create(_owner.Value, request, _logger))), cancellationToken);
    }

    /// <inheritdoc/>
    public async ValueTask<ITracedProcess> GrabAsync(int pid, GrabAccess access, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (access == GrabAccess.ReadOnly)
        {
            return await Grabber.Grab(_owner.Value, pid, access, _logger);
        }

        var grab = _owner.Value.InvokeAsync(() => Grabber.Grab(_owner.Value, pid, access, _logger, p => Configured(p))).Unwrap();
        return await Abandonable(grab, cancellationToken);
    }

    /// <inheritdoc/>
    public ulong? StartTimeOf(int pid) => pid > 0 ? ProcessIdentity.StartTime(_owner.Value.Kernel, pid) : null;

    private LinuxProcess Configured(LinuxProcess process)
    {
        process.EmulationEnabled = _options.EmulateStepOver;
        process.Metrics = _metrics;
        process.AnswerOnOwner = _options.AnswerStopsOnOwnerThread;
        process.SlowAnswerTicks = (long)(_options.SlowAnswerLimit.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
        return process;
    }

    /// <summary>
    /// Cancelling abandons the wait, not the work already queued on the owner: a victim that arrives after the
    /// caller gave up is let go (created ones killed, grabbed ones detached) instead of staying traced forever.
    /// </summary>
    private static async Task<ITracedProcess> Abandonable(Task<LinuxProcess> work, CancellationToken cancellationToken)
    {
        try
        {
            return await work.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            _ = work.ContinueWith(
                t =>
                {
                    if (t.IsCompletedSuccessfully)
                    {
                        t.Result.Dispose();
                        t.Result.Streams?.Dispose();
                    }
                },
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
            throw;
        }
    }

    /// <summary>Fails with a message that says what this backend needs.</summary>
    internal static void EnsureSupported()
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("The Linux ptrace backend (UseLinux) runs only on Linux; pick the backend for this OS.");
        }

        if (System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture != System.Runtime.InteropServices.Architecture.X64)
        {
            throw new PlatformNotSupportedException(
                $"The Linux ptrace backend supports x86-64 only, not {System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture}.");
        }
    }
}
