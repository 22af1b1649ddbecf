using ProcHex.Ports;
using Errno = ProcHex.Backends.Linux.Interop.Errno;
using Sys = ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux.Simulation.Kernel;

/// <summary>
/// The fake as the adapter's syscall seam: <see cref="ILinuxKernel"/>, with the interface's error conventions, so
/// the real <see cref="OwnerThread"/>, <see cref="Grabber"/> and <see cref="LinuxProcess"/> run over it. Creation
/// is not simulated (victims are spawned by the simulation and grabbed): <see cref="ILinuxKernel.PosixSpawn"/>, the
/// create options' descriptor and limit calls and
/// <see cref="ILinuxKernel.Access"/> throw <see cref="NotSupportedException"/>.
/// <para>Between any two of the adapter's calls the real world moves on; with <see cref="InterleaveChance"/> above
/// 0 the fake lets one actor act, chosen by the seed, before a call with that probability, so races between two
/// of our calls (a SIGCONT between SETOPTIONS and LISTEN) are reached too.</para>
/// </summary>
internal sealed partial class FakeLinuxKernel : ILinuxKernel
{
    /// <summary>How many steps of the world one millisecond of <see cref="ILinuxKernel.Sleep"/> lets happen.</summary>
    public const int StepsPerMillisecond = 10;

    private const string ExeDirectory = "/fake/";

    /// <summary>The probability that the world takes one step before each call through the seam.</summary>
    public double InterleaveChance { get; set; }

    /// <summary>Told of every ptrace request through the seam (request, tid, data) before it is carried out.</summary>
    public Action<int, int, nint>? RequestObserver { get; set; }

    /// <summary>Told of every program step a task is about to run (the task's turn in user space).</summary>
    public Action<FakeTask>? UserStepObserver { get; set; }

    int ILinuxKernel.Ptrace(int request, int tid, nint address, nint data)
    {
        Interleave();
        RequestObserver?.Invoke(request, tid, data);
        return Ptrace(request, tid, address, data);
    }

    int ILinuxKernel.PeekData(int tid, ulong address)
    {
        Interleave();
        return PeekData(tid, address);
    }

    int ILinuxKernel.GetRegs(int tid, out Interop.UserRegs regs)
    {
        Interleave();
        return GetRegs(tid, out regs);
    }

    int ILinuxKernel.SetRegs(int tid, in Interop.UserRegs regs)
    {
        Interleave();
        return SetRegs(tid, regs);
    }

    int ILinuxKernel.GetEventMessage(int tid, out ulong message)
    {
        Interleave();
        return GetEventMessage(tid, out message);
    }

    int ILinuxKernel.GetSigInfo(int tid, out SigInfo info)
    {
        Interleave();
        return GetSigInfo(tid, out info);
    }

    bool ILinuxKernel.HasPendingKernelTrap(int tid)
    {
        Interleave();
        return HasPendingKernelTrap(tid);
    }

    (int Result, int Status, int Errno) ILinuxKernel.WaitPid(int pid, int options)
    {
        Interleave();
        return WaitPid(pid, options);
    }

    int ILinuxKernel.Kill(int pid, int signal)
    {
        Interleave();
        return Kill(pid, signal);
    }

    int ILinuxKernel.ProcessVmReadv(int pid, ulong address, Span<byte> destination, out int errno)
    {
        Interleave();
        var n = ProcessVmReadv(pid, address, destination);
        errno = n < 0 ? -n : 0;
        return n < 0 ? -1 : n;
    }

    IProcMemFile? ILinuxKernel.OpenProcMem(int pid, out int errno)
    {
        Interleave();
        if (!HasMemory(pid, out var group))
        {
            errno = Errno.ENOENT;
            return null;
        }

        errno = 0;
        return new ProcMemFile(this, group, group.Memory);
    }

    int ILinuxKernel.PosixSpawn(string path, IReadOnlyList<string> argv, IReadOnlyList<string> envp, SpawnSetup setup, out int pid) =>
        throw new NotSupportedException("the fake kernel does not run programs: spawn a FakeImage and grab it");

    int ILinuxKernel.OpenFile(string path, int flags, out int errno) =>
        throw new NotSupportedException("the fake kernel has no file system: create options need the real kernel");

    int ILinuxKernel.Pipe(out int readEnd, out int writeEnd) =>
        throw new NotSupportedException("the fake kernel has no pipes: create options need the real kernel");

    void ILinuxKernel.Close(int fd) =>
        throw new NotSupportedException("the fake kernel has no descriptors: create options need the real kernel");

    int ILinuxKernel.SetResourceLimit(int pid, int resource, ulong soft, ulong hard) =>
        throw new NotSupportedException("the fake kernel has no resource limits: create options need the real kernel");

    int ILinuxKernel.Access(string path, int mode) =>
        throw new NotSupportedException("the fake kernel has no file system: spawn a FakeImage and grab it");

    /// <summary>No signal handlers are modelled, so SIGCHLD's disposition never needs changing.</summary>
    bool ILinuxKernel.SkipChildStopSignals() => false;

    /// <summary>A fake process that sleeps for good, seized with EXITKILL: each SIGUSR1 stops it, as the real one.</summary>
    int ILinuxKernel.StartWakeProcess()
    {
        var image = new FakeImage("wake").Function("main", new Sleep(1_000), new Jump(0));
        var pid = Spawn(image);
        var error = Ptrace(Sys.PTRACE_SEIZE, pid, 0, Sys.PTRACE_O_EXITKILL);
        return error == 0 ? pid : throw new TracerException("cannot trace the wake process", Interop.Errno.KindOf(error), error);
    }

    void ILinuxKernel.Wake(int wakePid) => _ = Kill(wakePid, Sys.SIGUSR1);

    /// <summary>Time in the fake is what its actors do: the world takes a few steps per millisecond.</summary>
    void ILinuxKernel.Sleep(int milliseconds)
    {
        Trace($"tracer sleeps {milliseconds} ms");
        Run(Math.Max(1, milliseconds) * StepsPerMillisecond);
    }

    /// <summary>The tracer is one thread, whose tid is the TracerPid its tracees show.</summary>
    int ILinuxKernel.GetTid() => TracerPid;

    IReadOnlyList<int> ILinuxKernel.Processes() => Pids.ToList();

    /// <summary>/proc/PID/stat: the process's (its leader's) state; /proc/TID/stat of a thread works too.</summary>
    char? ILinuxKernel.State(int pid)
    {
        Interleave();
        return ProcessState(pid) ?? ThreadState(pid);
    }

    /// <summary>Field 4 (ppid) and 9 (flags, never PF_KTHREAD); the others are not modelled (null).</summary>
    ulong? ILinuxKernel.StatField(int pid, int number) => Find(pid) is not { } t
        ? null
        : number switch
        {
            4 => (ulong)t.Group.Parent,
            9 => 0,
            _ => null,
        };

    /// <summary>Tgid, Pid and TracerPid; the other lines are not modelled (null).</summary>
    string? ILinuxKernel.StatusField(int pid, string name)
    {
        if (Find(pid) is not { } t)
        {
            return null;
        }

        var value = name switch
        {
            "Tgid" => t.Group.Pid,
            "Pid" => t.Tid,
            "TracerPid" => TracerPidOf(pid),
            _ => (int?)null,
        };
        return value?.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    int ILinuxKernel.TracerPid(int pid) => TracerPidOf(pid);

    IReadOnlyList<int> ILinuxKernel.Threads(int pid) => TaskIds(pid);

    /// <summary>One executable mapping: the image's text.</summary>
    string ILinuxKernel.ReadMaps(int pid)
    {
        var group = LiveGroup(pid);
        var end = FakeImage.TextBase + ((ulong)group.Image.FunctionCount * FakeImage.FunctionSpan);
        return $"{FakeImage.TextBase:x}-{end:x} r-xp 00000000 00:00 0 {ExeDirectory}{group.Image.Name}\n";
    }

    /// <summary>No auxiliary vector is modelled: empty.</summary>
    byte[] ILinuxKernel.ReadAuxv(int pid)
    {
        _ = LiveGroup(pid);
        return [];
    }

    string? ILinuxKernel.ReadExeLink(int pid) => ExeDirectory + LiveGroup(pid).Image.Name;

    /// <summary>Every simulated image is an x86-64 ELF64 executable: e_ident, ET_EXEC, EM_X86_64.</summary>
    byte[] ILinuxKernel.ReadExeHeader(int pid)
    {
        _ = LiveGroup(pid);
        return [0x7f, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 62, 0];
    }

    IReadOnlyList<ThreadSnapshot> ILinuxKernel.ThreadSnapshots(int pid)
    {
        var snapshots = TaskIds(pid).Select(Find).OfType<FakeTask>()
            .Select(t => new ThreadSnapshot(t.Tid, t.IsAlive ? t.Rip : null)).ToList();
        return snapshots.Count > 0 ? snapshots : throw new TracerException($"pid {pid}: no such process", TracerErrorKind.Gone, Errno.ESRCH);
    }

    private FakeThreadGroup LiveGroup(int pid) =>
        HasMemory(pid, out var group) ? group : throw new IOException($"/proc/{pid}: no such process");

    private void Interleave()
    {
        if (InterleaveChance > 0 && _random.NextDouble() < InterleaveChance)
        {
            _ = Step();
        }
    }

    /// <summary>
    /// /proc/PID/mem, bound to the address space it was opened on: once exec replaced it (or the process is gone)
    /// reads and writes move nothing, as the kernel's mem_rw does when the mm has no users left.
    /// </summary>
    private sealed class ProcMemFile(FakeLinuxKernel kernel, FakeThreadGroup group, FakeMemory memory) : IProcMemFile
    {
        public int PRead(ulong address, Span<byte> destination, out int errno)
        {
            kernel.Interleave();
            if (!IsCurrent)
            {
                errno = 0;
                return 0;
            }

            var n = memory.Read(address, destination);
            errno = n == 0 && destination.Length > 0 ? Errno.EIO : 0;
            return errno != 0 ? -1 : n;
        }

        public int PWrite(ulong address, ReadOnlySpan<byte> source, out int errno)
        {
            kernel.Interleave();
            if (!IsCurrent)
            {
                errno = 0;
                return 0;
            }

            var n = memory.Write(address, source);
            errno = n == 0 && source.Length > 0 ? Errno.EIO : 0;
            if (errno == 0)
            {
                kernel.Trace($"pwrite({group.Pid}, 0x{address:x}, {Convert.ToHexString(source[..n])})");
            }

            return errno != 0 ? -1 : n;
        }

        private bool IsCurrent => group.Memory == memory && group.Live.Any();

        public void Dispose()
        {
        }
    }
}
