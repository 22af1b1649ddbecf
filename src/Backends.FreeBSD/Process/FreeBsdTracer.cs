using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ProcHex.Ports;

namespace ProcHex.Backends.FreeBSD;

/// <summary>The FreeBSD amd64 ptrace backend.</summary>
public sealed class FreeBsdTracer : IProcessTracer
{
    private readonly IFreeBsdKernel _kernel;
    private readonly PtraceCalls _ptrace;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ProcHexMetrics _metrics;

    /// <summary>The FreeBSD tracer over <paramref name="kernel"/> (the real one, or a fake for tests on any OS).</summary>
    /// <param name="kernel">The system calls it makes.</param>
    /// <param name="loggerFactory">Where its diagnostics go; none when null.</param>
    /// <param name="metrics">Where it counts its step-overs; <see cref="ProcHexMetrics.Shared"/> when null.</param>
    public FreeBsdTracer(IFreeBsdKernel kernel, ILoggerFactory? loggerFactory = null, ProcHexMetrics? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        _kernel = kernel;
        _ptrace = new PtraceCalls(kernel);
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        _metrics = metrics ?? ProcHexMetrics.Shared;
    }

    /// <inheritdoc/>
    public string Name => "freebsd";

    /// <inheritdoc/>
    public ValueTask<ITracedProcess> CreateAsync(ProcessStartRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult<ITracedProcess>(Trampoline.Create(_ptrace, request, Logger(), _metrics));
    }

    /// <inheritdoc/>
    public ValueTask<ITracedProcess> GrabAsync(int pid, GrabAccess access, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult<ITracedProcess>(Grabber.Grab(_ptrace, pid, access, Logger(), _metrics));
    }

    /// <inheritdoc/>
    public ulong? StartTimeOf(int pid) => pid > 0 ? ProcessIdentity.StartTime(_kernel, pid) : null;

    private ILogger Logger() => _loggerFactory.CreateLogger<FreeBsdProcess>();
}
