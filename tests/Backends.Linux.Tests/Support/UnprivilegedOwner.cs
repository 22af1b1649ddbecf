using Microsoft.Extensions.Logging.Abstractions;
using System.Runtime.InteropServices;
using ProcHex.Ports;

namespace ProcHex.Backends.Linux.Tests.Support;

/// <summary>
/// A tracer that attaches as an unprivileged user would, inside this (root) test process. Linux credentials
/// belong to a thread, and the kernel remembers the credentials a tracer had when it attached: so a dedicated
/// owner thread drops itself to nobody (65534, no effective capabilities) with the raw setresgid/setresuid system
/// calls (glibc's wrappers would change every thread of the process) just for the spawn and the seize, then
/// takes root back before it completes anything (a thread-pool thread it started would inherit nobody). The
/// victims it creates run as nobody and are traced by nobody for every check the kernel makes later.
/// </summary>
internal static partial class UnprivilegedOwner
{
    public const int Nobody = 65534;

    private const long SysSetresuid = 117;
    private const long SysSetresgid = 119;

    private static readonly Lazy<OwnerThread> Owner = new(() => new OwnerThread(LinuxKernel.Instance, null), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The tracer (root is needed to drop and take back a thread's ids, as in CI).</summary>
    public static IProcessTracer Tracer { get; } = new DroppingTracer();

    private static T AsNobody<T>(Func<T> work)
    {
        Check(Syscall(SysSetresgid, Nobody, Nobody, 0), "setresgid");
        Check(Syscall(SysSetresuid, Nobody, Nobody, 0), "setresuid");
        try
        {
            return work();
        }
        finally
        {
            // The saved uid 0 lets the thread become root again, with its capabilities.
            Check(Syscall(SysSetresuid, 0, 0, 0), "setresuid back");
            Check(Syscall(SysSetresgid, 0, 0, 0), "setresgid back");
        }
    }

    private static void Check(long result, string call)
    {
        if (result != 0)
        {
            throw new InvalidOperationException($"{call} failed: errno {Marshal.GetLastPInvokeError()} (these tests must run as root)");
        }
    }

    // glibc's syscall() is plain assembly that ignores the variadic register count, so a fixed signature is safe.
    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, long a1, long a2, long a3);

    private sealed class DroppingTracer : IProcessTracer
    {
        public string Name => "linux";

        public async ValueTask<ITracedProcess> CreateAsync(ProcessStartRequest request, CancellationToken cancellationToken) =>
            await Owner.Value.InvokeAsync(() => AsNobody(() => Trampoline.Create(Owner.Value, request, NullLogger.Instance)));

        public async ValueTask<ITracedProcess> GrabAsync(int pid, GrabAccess access, CancellationToken cancellationToken) =>
            await await Owner.Value.InvokeAsync(() => AsNobody(() => Grabber.Grab(Owner.Value, pid, access, NullLogger.Instance)));
    }
}
