using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ProcHex.Backends.Linux;

namespace ProcHex;

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
        return builder.UseTracer(sp => new LinuxTracer(sp.GetService<ILoggerFactory>()));
    }
}
