using Microsoft.Extensions.DependencyInjection;
using ProcHex.Ports;

namespace ProcHex;

/// <summary>
/// Chooses the backend for <see cref="ServiceCollectionExtensions.AddProcHex"/>. Each backend package adds its
/// own <c>UseX()</c> extension that calls <see cref="UseTracer"/>.
/// </summary>
public sealed class ProcHexBuilder
{
    internal ProcHexBuilder(IServiceCollection services) => Services = services;

    /// <summary>The service collection ProcHex is being added to; backend extensions register their services here.</summary>
    public IServiceCollection Services { get; }

    internal bool HasTracer { get; private set; }

    /// <summary>Registers the tracer that talks to the OS. The last call wins.</summary>
    public ProcHexBuilder UseTracer(Func<IServiceProvider, IProcessTracer> factory)
    {
        ArgumentNullException.ThrowIfNull(factory);
        Services.AddSingleton(factory);
        HasTracer = true;
        return this;
    }

    /// <summary>Adjusts the session options.</summary>
    public ProcHexBuilder Configure(Action<ProcHexOptions> configure)
    {
        Services.Configure(configure);
        return this;
    }
}
