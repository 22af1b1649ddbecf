using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using ProcHex.Ports;

namespace ProcHex;

/// <c>services.AddProcHex(b => b.UseX())</c>: registers a <see cref="ProcHexSession"/> and its backend.
public static class ServiceCollectionExtensions
{
    /// <summary>
    /// Registers a <see cref="ProcHexSession"/> singleton and the backend chosen in <paramref name="configure"/>,
    /// for example <c>services.AddProcHex(b => b.UseLinux())</c>. Without a choice the container fails at the
    /// first resolve with a message naming the <c>UseX()</c> calls. The instruments (<see cref="ProcHexMetrics"/>) go on
    /// a meter from the container's <see cref="IMeterFactory"/> when it has one, on <see cref="ProcHexMetrics.Shared"/>
    /// otherwise; a <see cref="ProcHexMetrics"/> registered before this call is used as it is.
    /// </summary>
    public static IServiceCollection AddProcHex(this IServiceCollection services, Action<ProcHexBuilder> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<ProcHexOptions>().Validate(o => o.LruLimit >= 0, "LruLimit must not be negative.");
        var builder = new ProcHexBuilder(services);
        configure(builder);
        if (!builder.HasTracer)
        {
            throw new InvalidOperationException(
                "AddProcHex needs a backend: call UseLinux(), UseFreeBsd() or UseFake(...) on the builder.");
        }

        services.TryAddSingleton(static sp => sp.GetService<IMeterFactory>() is { } meters ? new ProcHexMetrics(meters) : ProcHexMetrics.Shared);
        services.AddSingleton(sp => new ProcHexSession(
            sp.GetRequiredService<IProcessTracer>(),
            sp.GetRequiredService<IOptions<ProcHexOptions>>().Value,
            sp.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance,
            sp.GetRequiredService<ProcHexMetrics>()));
        return services;
    }
}
