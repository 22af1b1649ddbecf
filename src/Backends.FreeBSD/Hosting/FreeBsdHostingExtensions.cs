using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ProcHex.Backends.FreeBSD;

namespace ProcHex;

/// <c>UseFreeBsd()</c>: the FreeBSD ptrace backend for <see cref="ProcHexBuilder"/>.
public static class FreeBsdHostingExtensions
{
    /// <summary>
    /// Chooses the FreeBSD ptrace backend. Off FreeBSD this throws <see cref="PlatformNotSupportedException"/> here,
    /// at start-up, rather than at the first call.
    /// </summary>
    public static ProcHexBuilder UseFreeBsd(this ProcHexBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var kernel = new LibcFreeBsdKernel();
        return builder.UseFreeBsd(kernel);
    }

    /// <summary>Chooses the FreeBSD adapter over the given system calls: a fake kernel in tests, on any OS.</summary>
    public static ProcHexBuilder UseFreeBsd(this ProcHexBuilder builder, IFreeBsdKernel kernel)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(kernel);
        return builder.UseTracer(sp => new FreeBsdTracer(
            kernel, sp.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance, sp.GetService<ProcHexMetrics>()));
    }
}
