using Microsoft.Extensions.DependencyInjection;
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
    /// first resolve with a message naming the <c>UseX()</c> calls.
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

        services.AddSingleton(sp => new ProcHexSession(
            sp.GetRequiredService<IProcessTracer>(),
            sp.GetRequiredService<IOptions<ProcHexOptions>>().Value,
            sp.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance));
        return services;
    }
}
