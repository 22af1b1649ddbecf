using ProcHex.Ports;

namespace ProcHex.Backends.FreeBSD.Tests;

/// <summary>
/// Issue 16 item 3: FreeBSD's errno numbers (sys/sys/errno.h) are judged into kinds in one place, and the numbers
/// above 34, which differ from Linux's, keep their own meaning: a process-table or descriptor limit is Exhausted on
/// both OSes, so the core and the CLI treat it alike.
/// </summary>
[Trait("Backend", "FreeBSD")]
public sealed class ErrnoTests
{
    [Theory]
    [InlineData(35, TracerErrorKind.Exhausted, "Resource temporarily unavailable")] // EAGAIN (11 on Linux)
    [InlineData(24, TracerErrorKind.Exhausted, "Too many open files")] // EMFILE
    [InlineData(23, TracerErrorKind.Exhausted, "Too many open files in system")] // ENFILE
    [InlineData(12, TracerErrorKind.Exhausted, "Cannot allocate memory")] // ENOMEM
    [InlineData(3, TracerErrorKind.Gone, "No such process")] // ESRCH
    [InlineData(62, TracerErrorKind.Failed, "Too many levels of symbolic links")] // ELOOP (40 on Linux)
    [InlineData(11, TracerErrorKind.Failed, "errno 11")] // EDEADLK here, not EAGAIN as on Linux
    public void An_errno_has_its_FreeBSD_kind_and_message(int errno, TracerErrorKind kind, string message)
    {
        Assert.Equal(kind, Interop.Errno.KindOf(errno));
        Assert.Equal(message, Interop.Errno.Describe(errno));
    }
}
