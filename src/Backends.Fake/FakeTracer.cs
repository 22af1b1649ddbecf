using ProcHex.Ports;

namespace ProcHex.Backends.Fake;

/// <summary>The <see cref="IProcessTracer"/> over a <see cref="FakeKernel"/>.</summary>
public sealed class FakeTracer : IProcessTracer
{
    public FakeTracer(FakeKernel kernel)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        Kernel = kernel;
    }

    public string Name => "fake";

    public FakeKernel Kernel { get; }

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
