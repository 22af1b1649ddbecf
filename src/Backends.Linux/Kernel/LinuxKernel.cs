using System.Runtime.InteropServices;
using System.Text;
using ProcHex.Ports;
using static ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux;

/// <summary>
/// The real kernel: glibc through Interop/, /proc through <see cref="ProcFs"/>. It keeps no state of its own (the
/// kernel binds tracees to the calling thread, not to this object), so one instance serves every owner thread.
/// </summary>
internal sealed class LinuxKernel : ILinuxKernel
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

    /// <remarks>
    /// Never fork from managed code: glibc's posix_spawn uses clone(CLONE_VM | CLONE_VFORK) and execs at once, so no
    /// managed code runs in the child. The file actions (chdir, dup2) run in that child between clone and exec, and a
    /// failing one is posix_spawn's return value, the child already reaped by glibc.
    /// </remarks>
    public unsafe int PosixSpawn(string path, IReadOnlyList<string> argv, IReadOnlyList<string> envp, SpawnSetup setup, out int pid)
    {
        var blocks = new List<nint>();
        var actions = stackalloc byte[SpawnFileActionsSize];
        _ = FileActionsInit(actions);
        try
        {
            if (AddFileActions(actions, setup) is var actionError and not 0)
            {
                pid = 0;
                return actionError;
            }

            var argvArray = ToCArray(argv, blocks);
            var envArray = ToCArray(envp, blocks);
            var attributes = stackalloc byte[SpawnAttrSize];
            var mask = stackalloc byte[SigSetSize];
            var defaults = stackalloc byte[SigSetSize];
            _ = PosixSpawnAttrInit(attributes);

            // The persona is per task and a clone inherits it, so ADDR_NO_RANDOMIZE set on this (owner) thread just
            // before posix_spawn reaches the child and survives its exec; restored at once, so the owner's later
            // children (other victims, its wake process) are randomized again. Nothing else runs on the owner thread
            // in between.
            var persona = setup.NoRandomize ? Personality(PersonalityQuery) : -1;
            if (setup.NoRandomize && (persona == -1 || Personality((nuint)(uint)persona | ADDR_NO_RANDOMIZE) == -1))
            {
                pid = 0;
                _ = PosixSpawnAttrDestroy(attributes);
                return LastErrno;
            }

            try
            {
                // The runtime ignores SIGPIPE and blocks signals on some threads; an ignored disposition and the
                // mask survive exec, so a victim would inherit them. Reset both, as Process.Start does.
                _ = SigEmptySet(mask);
                _ = SigFillSet(defaults);
                _ = PosixSpawnAttrSetSigMask(attributes, mask);
                _ = PosixSpawnAttrSetSigDefault(attributes, defaults);
                _ = PosixSpawnAttrSetFlags(attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
                int child;
                var error = Interop.Sys.PosixSpawn(&child, path, actions, attributes, (byte**)argvArray, (byte**)envArray);
                pid = error == 0 ? child : 0;
                return error;
            }
            finally
            {
                if (setup.NoRandomize)
                {
                    _ = Personality((nuint)(uint)persona);
                }

                _ = PosixSpawnAttrDestroy(attributes);
            }
        }
        finally
        {
            _ = FileActionsDestroy(actions);
            foreach (var block in blocks)
            {
                Marshal.FreeHGlobal(block);
            }
        }
    }

    private static unsafe int AddFileActions(void* actions, SpawnSetup setup)
    {
        ReadOnlySpan<int> descriptors = [setup.Input, setup.Output, setup.Error];
        for (var target = 0; target < descriptors.Length; target++)
        {
            // dup2 clears O_CLOEXEC on the copy: only 0, 1 and 2 reach the program, never the originals.
            if (descriptors[target] >= 0 && FileActionsAddDup2(actions, descriptors[target], target) is var error and not 0)
            {
                return error;
            }
        }

        return setup.WorkingDirectory is { } dir ? FileActionsAddChdir(actions, dir) : 0;
    }

    public int OpenFile(string path, int flags, out int errno)
    {
        var fd = OpenMode(path, flags | O_CLOEXEC, 0x1b6); // 0666, less the umask
        errno = fd == -1 ? LastErrno : 0;
        return fd;
    }

    public unsafe int Pipe(out int readEnd, out int writeEnd)
    {
        var fds = stackalloc int[2];
        if (Pipe2(fds, O_CLOEXEC) == -1)
        {
            readEnd = writeEnd = -1;
            return LastErrno;
        }

        (readEnd, writeEnd) = (fds[0], fds[1]);
        return 0;
    }

    public void Close(int fd) => _ = Interop.Sys.Close(fd);

    public unsafe int SetResourceLimit(int pid, int resource, ulong soft, ulong hard)
    {
        var limit = stackalloc ulong[2] { soft, hard };
        return PrLimit(pid, resource, limit, null) == -1 ? LastErrno : 0;
    }

    private static unsafe nint ToCArray(IReadOnlyList<string> strings, List<nint> blocks)
    {
        var array = Marshal.AllocHGlobal((strings.Count + 1) * sizeof(nint));
        blocks.Add(array);
        var slots = (nint*)array;
        for (var i = 0; i < strings.Count; i++)
        {
            var bytes = Encoding.UTF8.GetBytes(strings[i]);
            var text = Marshal.AllocHGlobal(bytes.Length + 1);
            blocks.Add(text);
            Marshal.Copy(bytes, 0, text, bytes.Length);
            ((byte*)text)[bytes.Length] = 0;
            slots[i] = text;
        }

        slots[strings.Count] = 0;
        return array;
    }

    public int Access(string path, int mode) => Interop.Sys.Access(path, mode) == 0 ? 0 : LastErrno;

    /// <remarks>
    /// Every ptrace stop of a victim sends SIGCHLD to the tracer's process. Ignored by default, that costs nothing;
    /// but once the host has started a process with Process.Start, the .NET runtime handles SIGCHLD, and each stop
    /// then wakes its signal thread to look at every child it started: on two cores that halved the breakpoint rate
    /// (bench/ProcHex.Peers, whose peers are started with Process.Start). The runtime needs SIGCHLD for children
    /// that end, never for children that stop, so the handler in place is kept and only told to skip stops.
    /// </remarks>
    public unsafe bool SkipChildStopSignals()
    {
        SigAction current;
        if (SigActionCall(SIGCHLD, null, &current) != 0
            || current.Handler is SIG_DFL or SIG_IGN
            || (current.Flags & SA_NOCLDSTOP) != 0)
        {
            return false;
        }

        // Read, then written back with one more flag: a handler installed by someone else between the two calls
        // would be undone; the runtime installs its own once, early, and nothing else here changes SIGCHLD.
        current.Flags |= SA_NOCLDSTOP;
        return SigActionCall(SIGCHLD, &current, null) == 0;
    }

    /// <remarks>A traced <c>sleep infinity</c>: SIGUSR1 turns into a signal-delivery-stop, and the wait returns.</remarks>
    public int StartWakeProcess()
    {
        var sleep = File.Exists("/bin/sleep") ? "/bin/sleep" : "/usr/bin/sleep";
        if (PosixSpawn(sleep, [sleep, "infinity"], [], SpawnSetup.Plain, out var pid) is var error and not 0)
        {
            throw new ProcessStartException(DescribeError(error), Interop.Errno.KindOf(error), error);
        }

        if (Ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_EXITKILL) is var err and not 0)
        {
            _ = Kill(pid, SIGKILL);
            throw Failure("cannot trace the owner thread's wake process (is ptrace permitted?)", err);
        }

        return pid;
    }

    public void Wake(int wakePid) => _ = Kill(wakePid, SIGUSR1);

    public void Sleep(int milliseconds) => Thread.Sleep(milliseconds);

    public int GetTid() => Interop.Sys.GetTid();

    public IReadOnlyList<int> Processes() => _proc.Processes();

    public char? State(int pid) => _proc.State(pid);

    public ulong? StatField(int pid, int number) => _proc.StatField(pid, number);

    public string? StatusField(int pid, string name) => _proc.StatusField(pid, name);

    public int TracerPid(int pid) => _proc.TracerPid(pid);

    public IReadOnlyList<int> Threads(int pid) => _proc.Threads(pid);

    public IReadOnlyList<ThreadSnapshot> ThreadSnapshots(int pid) => _proc.ThreadSnapshots(pid);

    public string ReadMaps(int pid) => _proc.Maps(pid);

    public byte[] ReadAuxv(int pid) => _proc.Auxv(pid);

    public string? ReadExeLink(int pid) => _proc.ExeLink(pid);

    public byte[] ReadExeHeader(int pid) => _proc.ExeHeader(pid);

    public int? PtraceScope() => _proc.PtraceScope();

    public string? CallerStatusField(string name) => _proc.CallerStatusField(name);

    public uint? ProcessOwner(int pid) => _proc.Owner(pid);

    public string? ObjectRoot(int pid) => _proc.ObjectRoot(pid);

    public unsafe (ulong Before, ulong After, ulong Hard)? RaiseOpenFileLimit()
    {
        Interop.RLimit limit;
        if (GetRLimit(RLIMIT_NOFILE, &limit) != 0)
        {
            return null;
        }

        var before = limit.Current;
        if (before >= limit.Maximum)
        {
            return (before, before, limit.Maximum);
        }

        limit.Current = limit.Maximum;
        return SetRLimit(RLIMIT_NOFILE, &limit) == 0 ? (before, limit.Maximum, limit.Maximum) : null;
    }
}
