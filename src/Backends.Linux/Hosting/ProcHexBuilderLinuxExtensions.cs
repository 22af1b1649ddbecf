using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ProcHex.Backends.Linux;

namespace ProcHex;

/// <c>UseLinux()</c>: the x86-64 Linux ptrace backend for <see cref="ProcHexBuilder"/>.
public static class ProcHexBuilderLinuxExtensions
{
    /// <summary>
    /// Chooses the Linux ptrace backend. Fails here, at start-up, on anything but x86-64 Linux, rather than at the
    /// first create or grab.
    /// </summary>
    public static ProcHexBuilder UseLinux(this ProcHexBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        LinuxTracer.EnsureSupported();
        return builder.UseTracer(sp => new LinuxTracer(null, sp.GetService<ILoggerFactory>(), sp.GetService<ProcHexMetrics>()));
    }

    /// <summary>Chooses the Linux ptrace backend with the options <paramref name="configure"/> sets.</summary>
    public static ProcHexBuilder UseLinux(this ProcHexBuilder builder, Action<LinuxBackendOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        LinuxTracer.EnsureSupported();
        var options = new LinuxBackendOptions();
        configure(options);
        return builder.UseTracer(sp => new LinuxTracer(options, sp.GetService<ILoggerFactory>(), sp.GetService<ProcHexMetrics>()));
    }
}
