using Microsoft.Extensions.DependencyInjection;

namespace ProcHex;

/// <summary>
/// The sensible default: the backend of the OS this process runs on. It lives outside the core, which knows no
/// backend, and outside each backend, which knows only itself.
/// </summary>
public static class OsBackendExtensions
{
    /// <summary>Registers ProcHex with the backend of this OS and the default options.</summary>
    /// <exception cref="PlatformNotSupportedException">No backend exists for this OS.</exception>
    public static IServiceCollection AddProcHex(this IServiceCollection services) =>
        services.AddProcHex(static b => b.UseOsBackend());

    /// <summary>Chooses <c>UseLinux()</c> on Linux and <c>UseFreeBsd()</c> on FreeBSD.</summary>
    /// <exception cref="PlatformNotSupportedException">No backend exists for this OS.</exception>
    public static ProcHexBuilder UseOsBackend(this ProcHexBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (OperatingSystem.IsLinux())
        {
            return builder.UseLinux();
        }

        if (OperatingSystem.IsFreeBSD())
        {
            return builder.UseFreeBsd();
        }

        throw new PlatformNotSupportedException(
            "ProcHex has backends for Linux and FreeBSD only; on this OS choose UseFake(kernel) for simulation.");
    }
}
