using ProcHex.Ports;

namespace ProcHex.Backends.FreeBSD;

/// <summary>
/// Typed ptrace requests over the seam: pointers to stack structs go in, errno comes back as a
/// <see cref="TracerException"/> (ESRCH marked <see cref="TracerException.IsGone"/>).
/// </summary>
internal sealed unsafe class PtraceCalls(IFreeBsdKernel kernel)
{
    public IFreeBsdKernel Kernel { get; } = kernel;

    public int Raw(int request, int pid, nint addr, int data, out int errno) =>
        Kernel.Ptrace(request, pid, addr, data, out errno);

    public void Check(int request, int pid, nint addr, int data, string what)
    {
        if (Kernel.Ptrace(request, pid, addr, data, out var errno) == -1)
        {
            throw Failure(what, pid, errno);
        }
    }

    public static TracerException Failure(string what, int pid, int errno) =>
        new($"{what} pid {pid}: {Interop.Errno.Describe(errno)}", Interop.Errno.KindOf(errno), errno);

/// <summary>
    /// Kills a half-started process and reaps it without blocking on a deferred SIGKILL: PT_KILL when it is
    /// trace-stopped (a kill(2) SIGKILL would wait for the next resume, tdsendsignal), else kill(2), and PT_KILL
    /// again for the SIGKILL signal stop a running traced process reports first.
    /// </summary>
    public void KillAndReap(int pid)
    {
        if (Raw(Interop.PtraceRequest.PT_KILL, pid, 0, 0, out _) == -1)
        {
            _ = Kernel.Kill(pid, Interop.Signals.SIGKILL, out _);
        }

        for (var i = 0; i < 64; i++)
        {
            if (Kernel.WaitPid(pid, out var status, 0, out var errno) == -1)
            {
                if (errno == Interop.Errno.EINTR)
                {
                    continue;
                }

                return;
            }

            if (!Interop.Wait.IfStopped(status))
            {
                return;
            }

            _ = Raw(Interop.PtraceRequest.PT_KILL, pid, 0, 0, out _);
        }
    }

    public void ContinueWith(int pid, int signal) =>
        Check(Interop.PtraceRequest.PT_CONTINUE, pid, Interop.PtraceRequest.ResumeHere, signal, "PT_CONTINUE");

    /// <summary>waitpid for <paramref name="pid"/>, retried on EINTR; any other failure throws.</summary>
    public int WaitFor(int pid, int options)
    {
        while (true)
        {
            if (Kernel.WaitPid(pid, out var status, options, out var errno) != -1)
            {
                return status;
            }

            if (errno != Interop.Errno.EINTR)
            {
                throw Failure("waitpid", pid, errno);
            }
        }
    }

    public Interop.PtraceLwpInfo LwpInfo(int pid)
    {
        Interop.PtraceLwpInfo info = default;
        Check(Interop.PtraceRequest.PT_LWPINFO, pid, (nint)(&info), sizeof(Interop.PtraceLwpInfo), "PT_LWPINFO");
        return info;
    }

    public Interop.Reg GetRegs(int lwp)
    {
        Interop.Reg regs = default;
        Check(Interop.PtraceRequest.PT_GETREGS, lwp, (nint)(&regs), 0, "PT_GETREGS");
        return regs;
    }

    public void SetRegs(int lwp, Interop.Reg regs) =>
        Check(Interop.PtraceRequest.PT_SETREGS, lwp, (nint)(&regs), 0, "PT_SETREGS");

    private const ulong PageSize = 4096;

    /// <summary>
    /// PT_IO: returns the bytes transferred; errno is non-zero when the transfer stopped early. FreeBSD fails a
    /// transfer that meets unmapped memory with EFAULT and leaves piod_len as it was (sys_ptrace copies the descriptor
    /// back only on success), so the prefix is found again page by page.
    /// </summary>
    public int Io(int pid, int op, ulong address, Span<byte> buffer, out int errno)
    {
        var done = IoOnce(pid, op, address, buffer, out errno);
        if (done != 0 || errno != Interop.Errno.EFAULT || buffer.Length <= 1)
        {
            return done;
        }

        while (done < buffer.Length)
        {
            var at = address + (ulong)done;
            var chunk = (int)Math.Min((ulong)(buffer.Length - done), PageSize - (at % PageSize));
            var moved = IoOnce(pid, op, at, buffer.Slice(done, chunk), out errno);
            done += moved;
            if (moved < chunk)
            {
                return done;
            }
        }

        errno = 0;
        return done;
    }

    private int IoOnce(int pid, int op, ulong address, Span<byte> buffer, out int errno)
    {
        fixed (byte* p = buffer)
        {
            var desc = new Interop.PtraceIoDesc
            {
                piod_op = op,
                piod_offs = (nint)address,
                piod_addr = (nint)p,
                piod_len = (nuint)buffer.Length,
            };
            var result = Kernel.Ptrace(Interop.PtraceRequest.PT_IO, pid, (nint)(&desc), 0, out errno);
            return result == -1 && desc.piod_len == (nuint)buffer.Length ? 0 : (int)desc.piod_len;
        }
    }

    public void WriteAll(int pid, int op, ulong address, ReadOnlySpan<byte> source)
    {
        var copy = source.ToArray();
        var done = Io(pid, op, address, copy, out var errno);
        if (done != copy.Length)
        {
            throw new TracerException(
                $"cannot write {copy.Length} bytes at 0x{address:x} in pid {pid}: {Interop.Errno.Describe(errno == 0 ? Interop.Errno.EFAULT : errno)}",
                Interop.Errno.KindOf(errno == 0 ? Interop.Errno.EFAULT : errno),
                errno);
        }
    }

    public void SetEventMask(int pid, Interop.PtraceEvents events)
    {
        var mask = (int)events;
        Check(Interop.PtraceRequest.PT_SET_EVENT_MASK, pid, (nint)(&mask), sizeof(int), "PT_SET_EVENT_MASK");
    }

    public int[] LwpList(int pid)
    {
        var count = Kernel.Ptrace(Interop.PtraceRequest.PT_GETNUMLWPS, pid, 0, 0, out var errno);
        if (count == -1)
        {
            throw Failure("PT_GETNUMLWPS", pid, errno);
        }

        var lwps = new int[Math.Max(count, 1)];
        fixed (int* p = lwps)
        {
            var filled = Kernel.Ptrace(Interop.PtraceRequest.PT_GETLWPLIST, pid, (nint)p, lwps.Length, out errno);
            if (filled == -1)
            {
                throw Failure("PT_GETLWPLIST", pid, errno);
            }

            return lwps[..filled];
        }
    }
}
