using static ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux;

/// <summary>
/// The real kernel: glibc through Interop/, /proc through <see cref="ProcFs"/>. It keeps no state of its own (the
/// kernel binds tracees to the calling thread, not to this object), so one instance serves every owner thread.
/// </summary>
internal sealed partial class LinuxKernel : ILinuxKernel
{
    private static readonly Dictionary<string, LinuxKernel> ByProcRoot = [];
    private readonly ProcFs _proc;

    private LinuxKernel(string procRoot) => _proc = new ProcFs(procRoot);

    /// <summary>The kernel with /proc where it usually is.</summary>
    public static LinuxKernel Instance { get; } = new("/proc");

    /// <summary>Where this kernel reads the proc file system.</summary>
    public string ProcRoot => _proc.Root;

    /// <summary>The kernel that reads the proc file system at <paramref name="procRoot"/> (issue 22 item 4).</summary>
    public static LinuxKernel For(string procRoot)
    {
        var root = new ProcFs(procRoot).Root;
        if (root == Instance.ProcRoot)
        {
            return Instance;
        }

        lock (ByProcRoot)
        {
            if (!ByProcRoot.TryGetValue(root, out var kernel))
            {
                ByProcRoot[root] = kernel = new LinuxKernel(root);
            }

            return kernel;
        }
    }

    public int Ptrace(int request, int tid, nint address, nint data) =>
        Interop.Sys.Ptrace(request, tid, address, data) == -1 ? LastErrno : 0;

    public int PeekData(int tid, ulong address) =>
        // SetLastError clears errno before the call: -1 with errno 0 is a word of all ones, not a failure.
        Interop.Sys.Ptrace(PTRACE_PEEKDATA, tid, unchecked((nint)address), 0) == -1 ? LastErrno : 0;

    public unsafe int GetRegs(int tid, out Interop.UserRegs regs)
    {
        regs = default;
        fixed (Interop.UserRegs* p = &regs)
        {
            return Interop.Sys.Ptrace(PTRACE_GETREGS, tid, 0, p) == -1 ? LastErrno : 0;
        }
    }

    public unsafe int SetRegs(int tid, in Interop.UserRegs regs)
    {
        var copy = regs;
        return Interop.Sys.Ptrace(PTRACE_SETREGS, tid, 0, &copy) == -1 ? LastErrno : 0;
    }

    public unsafe int GetExtendedState(int tid, Span<byte> buffer, out int length)
    {
        fixed (byte* p = buffer)
        {
            var iov = new Interop.IoVec { Base = p, Length = (nuint)buffer.Length };
            var errno = Interop.Sys.Ptrace(PTRACE_GETREGSET, tid, NT_X86_XSTATE, &iov) == -1 ? LastErrno : 0;
            length = errno == 0 ? (int)iov.Length : 0;
            return errno;
        }
    }

    public unsafe int SetExtendedState(int tid, ReadOnlySpan<byte> state)
    {
        fixed (byte* p = state)
        {
            var iov = new Interop.IoVec { Base = p, Length = (nuint)state.Length };
            return Interop.Sys.Ptrace(PTRACE_SETREGSET, tid, NT_X86_XSTATE, &iov) == -1 ? LastErrno : 0;
        }
    }

    public unsafe int GetSignalMask(int tid, out ulong mask)
    {
        ulong value = 0;
        var errno = Interop.Sys.Ptrace(PTRACE_GETSIGMASK, tid, sizeof(ulong), &value) == -1 ? LastErrno : 0;
        mask = value;
        return errno;
    }

    public unsafe int SetSignalMask(int tid, ulong mask) =>
        Interop.Sys.Ptrace(PTRACE_SETSIGMASK, tid, sizeof(ulong), &mask) == -1 ? LastErrno : 0;

    public ISharedMapping? MapProcessFile(int pid, int fd, out int errno) => SharedMapping.Open($"{_proc.Root}/{pid}/fd/{fd}", out errno);

    public unsafe int GetEventMessage(int tid, out ulong message)
    {
        ulong value = 0;
        var errno = Interop.Sys.Ptrace(PTRACE_GETEVENTMSG, tid, 0, &value) == -1 ? LastErrno : 0;
        message = value;
        return errno;
    }

    public unsafe int GetSigInfo(int tid, out SigInfo info)
    {
        // siginfo_t is 128 bytes: si_signo, si_errno, si_code, then the union, 8-aligned, whose first field is si_pid.
        var raw = stackalloc int[32];
        if (Interop.Sys.Ptrace(PTRACE_GETSIGINFO, tid, 0, raw) == -1)
        {
            info = default;
            return LastErrno;
        }

        info = new SigInfo(raw[0], raw[2], raw[4]);
        return 0;
    }

    public unsafe bool HasPendingKernelTrap(int tid)
    {
        const int Peek = 8;
        var args = stackalloc ulong[2];
        args[0] = 0;                       // off
        args[1] = (ulong)(uint)Peek << 32; // flags 0 (the thread's own queue), nr
        var infos = stackalloc int[32 * Peek];
        var n = (int)Interop.Sys.Ptrace(PTRACE_PEEKSIGINFO, tid, (nint)args, infos);
        for (var i = 0; i < n; i++)
        {
            if (infos[32 * i] == SIGTRAP && infos[(32 * i) + 2] == SI_KERNEL)
            {
                return true;
            }
        }

        return false;
    }

    public unsafe (int Result, int Status, int Errno) WaitPid(int pid, int options)
    {
        var status = 0;
        var result = Interop.Sys.WaitPid(pid, &status, options);
        return (result, status, result == -1 ? LastErrno : 0);
    }

    public int Kill(int pid, int signal) => Interop.Sys.Kill(pid, signal) == -1 ? LastErrno : 0;

    public unsafe int ProcessVmReadv(int pid, ulong address, Span<byte> destination, out int errno)
    {
        fixed (byte* p = destination)
        {
            var local = new Interop.IoVec { Base = p, Length = (nuint)destination.Length };
            var remote = new Interop.IoVec { Base = (void*)address, Length = (nuint)destination.Length };
            var n = Interop.Sys.ProcessVmReadv(pid, &local, 1, &remote, 1, 0);
            errno = n < 0 ? LastErrno : 0;
            return (int)n;
        }
    }

    public IProcMemFile? OpenProcMem(int pid, out int errno)
    {
        var fd = Open($"{_proc.Root}/{pid}/mem", O_RDWR | O_CLOEXEC);
        if (fd.IsInvalid)
        {
            errno = LastErrno;
            fd.Dispose();
            return null;
        }

        errno = 0;
        return new ProcMemFile(fd);
    }

    /// <summary>The descriptor stays a SafeHandle: closed exactly once, never while a read or write uses it.</summary>
    private sealed class ProcMemFile(Interop.SafeFileDescriptorHandle fd) : IProcMemFile
    {
        public unsafe int PRead(ulong address, Span<byte> destination, out int errno)
        {
            fixed (byte* p = destination)
            {
                var n = Interop.Sys.PRead(fd, p, (nuint)destination.Length, unchecked((long)address));
                errno = n < 0 ? LastErrno : 0;
                return (int)n;
            }
        }

        public unsafe int PWrite(ulong address, ReadOnlySpan<byte> source, out int errno)
        {
            fixed (byte* p = source)
            {
                var n = Interop.Sys.PWrite(fd, p, (nuint)source.Length, unchecked((long)address));
                errno = n < 0 ? LastErrno : 0;
                return (int)n;
            }
        }

        public void Dispose() => fd.Dispose();
    }
}
