using ProcHex.Ports;

namespace ProcHex.Backends.Linux;

/// <summary>
/// /proc/PID/mem of one image. The file is bound to the address space it was opened on, so it is reopened
/// after exec. Writes go here (text included: the kernel breaks copy-on-write for us).
/// </summary>
/// <remarks>
/// Once that address space has no users left, the kernel's mem_rw moves nothing and returns 0 (fs/proc/base.c:
/// mmget_not_zero fails), where an unmapped address in a live one fails with EIO. Reopened at every exec we see, the
/// file therefore meets a dead address space only when the process is dying or exec'd unseen: that is reported to
/// <c>imageGone</c>, and the access fails as the process being gone does.
/// </remarks>
internal sealed class MemoryFile : IDisposable
{
    private readonly ILinuxKernel _kernel;
    private readonly int _pid;
    private readonly Action? _imageGone;
    private IProcMemFile? _file;

    public MemoryFile(ILinuxKernel kernel, int pid, Action? imageGone = null)
    {
        _kernel = kernel;
        _pid = pid;
        _imageGone = imageGone;
    }

    public void Reopen()
    {
        _file?.Dispose();
        _file = null;
    }

    public int Read(ulong address, Span<byte> destination)
    {
        var n = Open().PRead(address, destination, out var errno);
        if (n < 0)
        {
            throw Interop.Sys.Failure($"cannot read memory of pid {_pid} at 0x{address:x}", errno);
        }

        return n > 0 || destination.IsEmpty ? n : throw ImageGone(address);
    }

    public void Write(ulong address, ReadOnlySpan<byte> source)
    {
        var n = Open().PWrite(address, source, out var errno);
        if (n == 0 && !source.IsEmpty)
        {
            throw ImageGone(address);
        }

        if (n != source.Length)
        {
            throw Interop.Sys.Failure($"cannot write memory of pid {_pid} at 0x{address:x}", n < 0 ? errno : Interop.Errno.EIO);
        }
    }

    private TracerException ImageGone(ulong address)
    {
        _imageGone?.Invoke();
        return Interop.Sys.Failure(
            $"cannot access memory of pid {_pid} at 0x{address:x}: the image it had is gone (the process exited or exec'd)",
            Interop.Errno.ESRCH);
    }

    /// <summary>Writes into another process's memory once (a fork child's copy of our breakpoints).</summary>
    public static void WriteOnce(ILinuxKernel kernel, int pid, ulong address, ReadOnlySpan<byte> source)
    {
        using var file = new MemoryFile(kernel, pid);
        file.Write(address, source);
    }

    private IProcMemFile Open()
    {
        if (_file is not null)
        {
            return _file;
        }

        var file = _kernel.OpenProcMem(_pid, out var errno)
            ?? throw Interop.Sys.Failure(
                errno == Interop.Errno.EMFILE
                    ? $"cannot open /proc/{_pid}/mem (each victim held for control keeps one open: raise RLIMIT_NOFILE, ulimit -n, to hold more)"
                    : $"cannot open /proc/{_pid}/mem",
                errno == Interop.Errno.ENOENT ? Interop.Errno.ESRCH : errno);
        _file = file;
        return file;
    }

    public void Dispose() => Reopen();
}
