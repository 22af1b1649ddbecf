namespace ProcHex.Backends.Linux;

/// <summary>
/// /proc/PID/mem of one image. The descriptor is bound to the address space it was opened on, so it is reopened
/// after exec. Writes go here (text included: the kernel breaks copy-on-write for us).
/// </summary>
internal sealed class MemoryFile : IDisposable
{
    private readonly int _pid;
    private Interop.SafeFileDescriptorHandle? _fd;

    public MemoryFile(int pid) => _pid = pid;

    public void Reopen()
    {
        _fd?.Dispose();
        _fd = null;
    }

    public unsafe int Read(ulong address, Span<byte> destination)
    {
        var fd = Open();
        fixed (byte* p = destination)
        {
            var n = Interop.Sys.PRead(fd, p, (nuint)destination.Length, unchecked((long)address));
            return n >= 0 ? (int)n : throw Interop.Sys.Failure($"cannot read memory of pid {_pid} at 0x{address:x}", Interop.Sys.LastErrno);
        }
    }

    public unsafe void Write(ulong address, ReadOnlySpan<byte> source)
    {
        var fd = Open();
        fixed (byte* p = source)
        {
            var n = Interop.Sys.PWrite(fd, p, (nuint)source.Length, unchecked((long)address));
            if (n != source.Length)
            {
                var errno = n < 0 ? Interop.Sys.LastErrno : Interop.Errno.EIO;
                throw Interop.Sys.Failure($"cannot write memory of pid {_pid} at 0x{address:x}", errno);
            }
        }
    }

    /// <summary>Writes into another process's memory once (a fork child's copy of our breakpoints).</summary>
    public static void WriteOnce(int pid, ulong address, ReadOnlySpan<byte> source)
    {
        using var file = new MemoryFile(pid);
        file.Write(address, source);
    }

    private Interop.SafeFileDescriptorHandle Open()
    {
        if (_fd is { IsInvalid: false, IsClosed: false })
        {
            return _fd;
        }

        var fd = Interop.Sys.Open($"/proc/{_pid}/mem", Interop.Sys.O_RDWR | Interop.Sys.O_CLOEXEC);
        if (fd.IsInvalid)
        {
            var errno = Interop.Sys.LastErrno;
            fd.Dispose();
            throw Interop.Sys.Failure($"cannot open /proc/{_pid}/mem", errno == Interop.Errno.ENOENT ? Interop.Errno.ESRCH : errno);
        }

        _fd = fd;
        return fd;
    }

    public void Dispose() => _fd?.Dispose();
}
