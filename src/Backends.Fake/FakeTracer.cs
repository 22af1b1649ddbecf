using ProcHex.Ports;

namespace ProcHex.Backends.Fake;

/// <summary>The <see cref="IProcessTracer"/> over a <see cref="FakeKernel"/>.</summary>
public sealed class FakeTracer : IProcessTracer
{
    /// <summary>A tracer over <paramref name="kernel"/>.</summary>
    /// <param name="kernel">The fake kernel.</param>
    public FakeTracer(FakeKernel kernel)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        Kernel = kernel;
    }

    /// <inheritdoc/>
    public string Name => "fake";

    /// <summary>The fake kernel this tracer drives.</summary>
    public FakeKernel Kernel { get; }

    /// <inheritdoc/>
    public ValueTask<ITracedProcess> CreateAsync(ProcessStartRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<ITracedProcess>(cancellationToken);
        }

        try
        {
            return ValueTask.FromResult<ITracedProcess>(Kernel.Create(request));
        }
        catch (TracerException e)
        {
            return ValueTask.FromException<ITracedProcess>(e);
        }
    }

    /// <inheritdoc/>
    public ValueTask<ITracedProcess> GrabAsync(int pid, GrabAccess access, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<ITracedProcess>(cancellationToken);
        }

        try
        {
            return Kernel.Grab(pid, access, cancellationToken);
        }
        catch (TracerException e)
        {
            return ValueTask.FromException<ITracedProcess>(e);
        }
    }
}
