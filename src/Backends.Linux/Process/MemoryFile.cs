namespace ProcHex.Backends.Linux;

/// <summary>
/// /proc/PID/mem of one image. The file is bound to the address space it was opened on, so it is reopened
/// after exec. Writes go here (text included: the kernel breaks copy-on-write for us).
/// </summary>
internal sealed class MemoryFile : IDisposable
{
    private readonly ILinuxKernel _kernel;
    private readonly int _pid;
    private IProcMemFile? _file;

    public MemoryFile(ILinuxKernel kernel, int pid)
    {
        _kernel = kernel;
        _pid = pid;
    }

    public void Reopen()
    {
        _file?.Dispose();
        _file = null;
    }

    public int Read(ulong address, Span<byte> destination)
    {
        var n = Open().PRead(address, destination, out var errno);
        return n >= 0 ? n : throw Interop.Sys.Failure($"cannot read memory of pid {_pid} at 0x{address:x}", errno);
    }

    public void Write(ulong address, ReadOnlySpan<byte> source)
    {
        var n = Open().PWrite(address, source, out var errno);
        if (n != source.Length)
        {
            throw Interop.Sys.Failure($"cannot write memory of pid {_pid} at 0x{address:x}", n < 0 ? errno : Interop.Errno.EIO);
        }
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
            ?? throw Interop.Sys.Failure($"cannot open /proc/{_pid}/mem", errno == Interop.Errno.ENOENT ? Interop.Errno.ESRCH : errno);
        _file = file;
        return file;
    }

    public void Dispose() => Reopen();
}
