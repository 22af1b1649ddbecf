using Microsoft.Extensions.Logging;
using ProcHex.Ports;

namespace ProcHex;

/// <summary>Placeholder surface; the implementation lands in the next commit.</summary>
public sealed class ProcHexSession : IAsyncDisposable
{
    public ProcHexSession(IProcessTracer tracer, ProcHexOptions? options = null, ILoggerFactory? loggerFactory = null)
    {
        Tracer = tracer;
        _ = options;
        _ = loggerFactory;
    }

    public IProcessTracer Tracer { get; }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
