using System.Runtime.InteropServices;
using System.Text;
using static Interop;

namespace ProcHex.Backends.FreeBSD.Tests.FakeKernel;

/// <summary>
/// A FreeBSD kernel in miniature, behind <see cref="IFreeBsdKernel"/>: processes with memory, LWPs and a script,
/// and the stop sequences sys/kern/sys_process.c and kern_sig.c produce. It lives in the test project because it
/// dereferences the adapter's pointers exactly as the kernel does (ptrace_io_desc, ptrace_lwpinfo, reg) — a
/// production assembly should not carry a second kernel anyone could select by mistake.
/// </summary>
/// <remarks>
/// Time advances lazily: a running process executes its script only while somebody waits for it (waitpid), or at
/// once when it runs untraced (detached), in both cases up to the point where it blocks (a <see cref="Block"/> or a
/// <see cref="Sleep"/>, which is off the CPU as kern_nanosleep's tsleep_sbt is). Everything happens under one lock;
/// blocking waits sleep on it.
/// <para>Each modelled behaviour carries a comment naming the kernel function it follows; KernelSemanticsTests has one
/// test per behaviour. Read in freebsd-src (sys/kern/kern_sig.c, sys_process.c, kern_exit.c, kern_fork.c,
/// libexec/rtld-elf/Symbol.map). In short:</para>
/// <list type="bullet">
/// <item>kern_sig.c sigqueue_add: SIGKILL and SIGSTOP take the fast path into sq_kill and keep no ksiginfo, so their
/// stops show si_code 0 and si_pid 0 (issignal: sigqueue_get fills only si_signo), and pending ones coalesce.</item>
/// <item>kern_sig.c issignal: the lowest pending signal is taken first (sig_ffs), except that right after PT_ATTACH
/// (P2_PTRACE_FSTP) the attach SIGSTOP goes first; a traced process stops for every signal (ptracestop) and
/// ignores the default action of stop signals.</item>
/// <item>kern_sig.c tdsendsignal: a SIGCONT deletes pending stop signals and a stop signal deletes a pending SIGCONT;
/// signals whose default action is to ignore (SIGURG, SIGCHLD, SIGIO, SIGWINCH, SIGINFO; siginit puts them in
/// ps_sigignore) are discarded when sent; a zombie accepts any signal and nothing happens ("return success when
/// killing a zombie"); for a traced process that is stopped, SIGCONT, stop signals and SIGKILL are only queued
/// ("If traced process is already stopped, then no further action is necessary"): no P_CONTINUED, no
/// WCONTINUED; a queued SIGKILL kills the process when it is next resumed, and a running traced process reports
/// the SIGKILL as a signal stop first (as issue 24 reads ptracestop/P_KILLED; not re-read here).</item>
/// <item>sys_process.c kern_ptrace: PT_ATTACH (classic) clears a job-control stop, queues SIGSTOP with kern_psignal
/// and sets P2_PTRACE_FSTP; the transparent variant (debug.ptrace_attach_transparent, FreeBSD main; taken from
/// issue 24, not re-read here) stops the process without PL_FLAG_SI and drops the signal of the first
/// PT_CONTINUE/PT_DETACH. Every other request needs the process traced by us, trace-stopped and waited for,
/// else EBUSY (proc_can_ptrace). PT_IO that meets unmapped memory fails with EFAULT and, because sys_ptrace copies
/// the descriptor out only on success, leaves piod_len as it was. PT_DETACH removes no pending signal.</item>
/// <item>kern_exit.c wait6: WCONTINUED reports P_CONTINUED, which only a job-control-stopped, untraced process gets.</item>
/// <item>kern_fork.c fork_return: a traced fork child's first stop is SIGSTOP with PL_FLAG_CHILD and PL_FLAG_SCX
/// (it stops on its way out of fork), without siginfo.</item>
/// <item>amd64 trap.c: int3 traps with SIGTRAP/TRAP_BRKPT and RIP one past it; PT_STEP traps with TRAP_TRACE. exec,
/// fork, LWP birth and exit are SIGTRAP stops carrying pl_flags without siginfo (ptrace(2)).</item>
/// <item>kern_proc.c: KERN_PROC_PATHNAME is the path the image was executed by; KERN_PROC_PID's ki_siglist is
/// p_siglist, the signals pending for the process.</item>
/// </list>
/// </remarks>
public sealed unsafe class FakeFreeBsdKernel : IFreeBsdKernel
{
    public const int TracerPid = 4242;
    public const int OutsiderPid = 777;
    public const int InitPid = 1;
    private const int PidMax = 99999;
    /// <summary>Where rsp points in every fake thread; the page from here up is mapped (the return address lives there).</summary>
    public const ulong StackTop = 0x7fffffffe000;

    /// <summary>A mapped, writable data page of every fake process.</summary>
    public const ulong ScratchPage = 0x600000;

    private readonly object _gate = new();
    private readonly Dictionary<int, FakeProcess> _live = [];
    private readonly Dictionary<int, FakeProcess> _all = [];
    private readonly Dictionary<string, FakeImage> _files = new(StringComparer.Ordinal);
    private readonly List<string> _calls = [];
    private readonly List<string> _violations = [];
    private readonly Dictionary<int, int> _failNext = [];
    private int _nextPid = 1000;
    private int _started;
    private int _nextLwp = 100100;

    public FakeFreeBsdKernel(FakeAttach attach = FakeAttach.Classic)
    {
        Attach = attach;
        AddFile(new FakeImage { Path = "/bin/sh", Steps = [new Raise(Signals.SIGSTOP), new ExecArgv0()] });
    }

    /// <summary>Which PT_ATTACH this kernel has: FreeBSD 14's classic one, or main's transparent one.</summary>
    public FakeAttach Attach { get; }

    /// <summary>How long a wait may block before the fake declares a deadlock (a test bug, not a kernel fact).</summary>
    public TimeSpan DeadlockTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Every ptrace request as "PT_NAME pid data".</summary>
    public IReadOnlyList<string> Calls
    {
        get
        {
            lock (_gate)
            {
                return [.. _calls];
            }
        }
    }

    /// <summary>Things a real victim would have suffered: a thread run past an int3, an untraced int3, an unguarded instruction.</summary>
    public IReadOnlyList<string> Violations
    {
        get
        {
            lock (_gate)
            {
                return [.. _violations];
            }
        }
    }

    public void AddFile(FakeImage image)
    {
        lock (_gate)
        {
            _files[image.Path] = image;
        }
    }

    /// <summary>Makes the next <paramref name="request"/> fail with <paramref name="errno"/>.</summary>
    public void FailNext(int request, int errno)
    {
        lock (_gate)
        {
            _failNext[request] = errno;
        }
    }

    public FakeProcess Process(int pid)
    {
        lock (_gate)
        {
            return _all[pid];
        }
    }

    /// <summary>How <paramref name="pid"/> looks from outside (ps): null once reaped.</summary>
    public (FakeState State, bool Traced)? Observe(int pid)
    {
        lock (_gate)
        {
            return _live.TryGetValue(pid, out var p) ? (p.State, p.Traced) : null;
        }
    }

    public bool IsLive(int pid)
    {
        lock (_gate)
        {
            return _live.ContainsKey(pid);
        }
    }

    /// <summary>
    /// Starts an untraced program whose parent is someone else (for grabs); as <paramref name="pid"/> when given,
    /// which must be free (a reused pid: the kernel hands pids out in order, so only a test can force one).
    /// </summary>
    public int StartUntraced(string path, bool isProtected = false, IReadOnlyList<string>? argv = null, int? pid = null)
    {
        lock (_gate)
        {
            if (pid is { } reused && _live.ContainsKey(reused))
            {
                throw new InvalidOperationException($"pid {reused} is in use");
            }

            var p = NewProcess(_files[path], argv ?? [path], parent: InitPid, pid);
            p.Protected = isProtected;
            return p.Pid;
        }
    }

    /// <summary>A signal from another process (kill -STOP from a shell), si_code SI_USER.</summary>
    public void SendSignal(int pid, int signal, int fromPid = OutsiderPid)
    {
        lock (_gate)
        {
            _ = KillLocked(pid, signal, fromPid, out _);
        }
    }

    /// <summary>The signals pending for <paramref name="pid"/> (ki_siglist), lowest first.</summary>
    public IReadOnlyList<int> Pending(int pid)
    {
        lock (_gate)
        {
            return [.. _all[pid].PendingSet.Order()];
        }
    }

    /// <summary>True when the text of <paramref name="pid"/> has no byte that differs from its image file.</summary>
    public bool TextIsOriginal(int pid)
    {
        lock (_gate)
        {
            var p = _all[pid];
            return p.Mappings.Where(m => m.Segment.IsText).All(m =>
                p.Memory.Read(m.Segment.Address, m.Segment.Bytes.Length).AsSpan()
                    .SequenceEqual(p.Pristine.Read(m.Segment.Address, m.Segment.Bytes.Length)));
        }
    }

    public byte ReadByte(int pid, ulong address)
    {
        lock (_gate)
        {
            _ = _all[pid].Memory.TryRead(address, out var b);
            return b;
        }
    }

    /// <summary>Lets a detached or untraced process run until it blocks, stops or dies.</summary>
    public void RunFree(int pid)
    {
        lock (_gate)
        {
            RunFreeLocked(_all[pid]);
        }
    }

    // ---- IFreeBsdKernel ----

    public int GetPid() => TracerPid;

    /// <summary>Whether procfs is mounted at /proc (not by default on FreeBSD; the scenario backend mounts it).</summary>
    public bool ProcfsMounted { get; set; }

    public int ReadProcMem(int pid, ulong address, Span<byte> buffer, out int errno)
    {
        lock (_gate)
        {
            if (!ProcfsMounted || !_live.TryGetValue(pid, out var p))
            {
                errno = Errno.ENOENT;
                return -1;
            }

            var done = 0;
            while (done < buffer.Length && p.Memory.TryRead(address + (ulong)done, out buffer[done]))
            {
                done++;
            }

            errno = done == 0 && buffer.Length > 0 ? Errno.EIO : 0;
            return errno == 0 ? done : -1;
        }
    }

    public int Access(string path, int mode, out int errno)
    {
        lock (_gate)
        {
            if (!_files.TryGetValue(path, out var image))
            {
                errno = Errno.ENOENT;
                return -1;
            }

            if ((mode & Sys.X_OK) != 0 && !image.Executable)
            {
                errno = Errno.EACCES;
                return -1;
            }

            errno = 0;
            return 0;
        }
    }

    public int PosixSpawn(string path, IReadOnlyList<string> argv, IReadOnlyList<string> environment, out int pid)
    {
        lock (_gate)
        {
            pid = 0;
            if (!_files.TryGetValue(path, out var image))
            {
                return Errno.ENOENT;
            }

            if (!image.Executable)
            {
                return Errno.EACCES;
            }

            var p = NewProcess(image, argv, TracerPid);
            p.Environment = environment;
            pid = p.Pid;
            Monitor.PulseAll(_gate);
            return 0;
        }
    }

    public int Kill(int pid, int signal, out int errno)
    {
        lock (_gate)
        {
            _calls.Add($"kill {pid} {signal}");
            return KillLocked(pid, signal, TracerPid, out errno);
        }
    }

    public int WaitPid(int pid, out int status, int options, out int errno)
    {
        var deadline = DateTime.UtcNow + DeadlockTimeout;
        var advances = 0;
        lock (_gate)
        {
            while (true)
            {
                status = 0;
                if (!_live.TryGetValue(pid, out var p) || p.Parent != TracerPid)
                {
                    errno = Errno.ECHILD;
                    return -1;
                }

                if (p.State == FakeState.Zombie)
                {
                    _live.Remove(pid);
                    status = p.WaitStatus;
                    errno = 0;
                    return pid;
                }

                if (p.State == FakeState.TraceStopped && !p.Waited && p.Report is { } report)
                {
                    p.Waited = true;
                    status = report.Status;
                    errno = 0;
                    return pid;
                }

                if (p.State == FakeState.JobStopped && !p.Waited && (options & Wait.WUNTRACED) != 0)
                {
                    p.Waited = true;
                    status = p.WaitStatus;
                    errno = 0;
                    return pid;
                }

                if ((options & Wait.WCONTINUED) != 0 && p.ContinuedFlag)
                {
                    p.ContinuedFlag = false;
                    status = Wait.Continued;
                    errno = 0;
                    return pid;
                }

                if (p.State == FakeState.Running && Advance(p))
                {
                    // A program that runs without stopping (a sleeper's loop) must not keep the kernel to itself.
                    if (++advances % 1000 == 0)
                    {
                        Monitor.Wait(_gate, 1);
                    }

                    continue;
                }

                if ((options & Wait.WNOHANG) != 0)
                {
                    errno = 0;
                    return 0;
                }

                if (p.State == FakeState.Running && p.WakeAt is { } wakeAt)
                {
                    // Asleep in nanosleep (tsleep_sbt): the timeout, or a signal (which pulses), wakes it; that is
                    // progress, not a deadlock.
                    var nap = wakeAt - DateTime.UtcNow;
                    if (nap > TimeSpan.Zero)
                    {
                        Monitor.Wait(_gate, nap);
                    }

                    deadline = DateTime.UtcNow + DeadlockTimeout;
                    continue;
                }

                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero)
                {
                    _violations.Add($"waitpid({pid}) blocked for {DeadlockTimeout}: nothing would ever wake it");
                    errno = Errno.ECHILD;
                    return -1;
                }

                Monitor.Wait(_gate, left);
            }
        }
    }

    public int Sysctl(ReadOnlySpan<int> mib, Span<byte> buffer, ref nuint oldLength, out int errno)
    {
        lock (_gate)
        {
            errno = 0;
            if (mib.Length != 4 || mib[0] != SysctlMib.CTL_KERN || mib[1] != SysctlMib.KERN_PROC
                || !_live.TryGetValue(mib[3], out var p))
            {
                errno = mib.Length == 4 ? Errno.ESRCH : Errno.EINVAL;
                return -1;
            }

            byte[] data = mib[2] switch
            {
                SysctlMib.KERN_PROC_VMMAP => VmMapBytes(p),
                SysctlMib.KERN_PROC_PATHNAME => Encoding.UTF8.GetBytes(p.ImagePath + "\0"),
                SysctlMib.KERN_PROC_AUXV => AuxvBytes(p),
                SysctlMib.KERN_PROC_PID => KinfoProcBytes(p),
                _ => [],
            };

            if (buffer.IsEmpty)
            {
                oldLength = (nuint)data.Length;
                return 0;
            }

            if ((int)oldLength < data.Length)
            {
                errno = Errno.ENOMEM;
                return -1;
            }

            data.CopyTo(buffer);
            oldLength = (nuint)data.Length;
            return 0;
        }
    }

    public int Ptrace(int request, int pid, nint addr, int data, out int errno)
    {
        lock (_gate)
        {
            _calls.Add($"{RequestName(request)} {pid} {data}");
            if (_failNext.Remove(request, out var injected))
            {
                errno = injected;
                return -1;
            }

            var result = PtraceLocked(request, pid, addr, data, out errno);
            Monitor.PulseAll(_gate);
            return result;
        }
    }

    // ---- the kernel ----

    private int PtraceLocked(int request, int pid, nint addr, int data, out int errno)
    {
        errno = 0;
        FakeProcess? p;
        FakeThread? thread = null;
        if (pid <= PidMax)
        {
            _live.TryGetValue(pid, out p);
        }
        else
        {
            p = _live.Values.FirstOrDefault(q => q.Threads.Any(t => t.Lwp == pid));
            thread = p?.Threads.First(t => t.Lwp == pid);
        }

        if (p is null || p.State == FakeState.Zombie)
        {
            errno = Errno.ESRCH;
            return -1;
        }

        if (request == PtraceRequest.PT_ATTACH)
        {
            if (p.Pid == TracerPid)
            {
                errno = Errno.EINVAL;
                return -1;
            }

            if (p.Traced)
            {
                errno = Errno.EBUSY;
                return -1;
            }

            if (p.Protected)
            {
                errno = Errno.EPERM;
                return -1;
            }

            // sys_process.c kern_ptrace PT_ATTACH: proc_set_traced (P_TRACED, P2_PTRACE_FSTP, PTRACE_DEFAULT = exec
            // events), reparent to the tracer, clear a job-control stop (P_STOPPED_SIG) so the process can take the
            // attach stop, then kern_psignal(SIGSTOP): si_code SI_KERNEL is asked for, but sigqueue_add keeps no
            // ksiginfo for SIGSTOP, so the stop reports si_code 0.
            p.Traced = true;
            p.OriginalParent = p.Parent;
            p.Parent = TracerPid;
            p.EventMask = (int)PtraceEvents.PTRACE_EXEC;
            if (p.State == FakeState.JobStopped)
            {
                p.State = FakeState.Running;
                p.Waited = false;
            }

            if (Attach == FakeAttach.Transparent)
            {
                // The transparent variant stops the process for the tracer without a signal of its own.
                p.TransparentStopPending = true;
            }
            else
            {
                p.AttachStopFirst = true;
                QueueSignal(p, Signals.SIGSTOP, SiCode.SI_KERNEL, 0);
            }

            return 0;
        }

        if (!p.Traced)
        {
            errno = Errno.EPERM;
            return -1;
        }

        if (p.Parent != TracerPid)
        {
            errno = Errno.EBUSY;
            return -1;
        }

        if (p.State != FakeState.TraceStopped || !p.Waited)
        {
            errno = Errno.EBUSY;
            return -1;
        }

        thread ??= p.Threads.FirstOrDefault(t => t.Lwp == p.XThread) ?? p.Threads[0];
        switch (request)
        {
            case PtraceRequest.PT_CONTINUE:
            case PtraceRequest.PT_STEP:
            case PtraceRequest.PT_DETACH:
            case PtraceRequest.PT_KILL:
                if (data < 0 || data > 128)
                {
                    errno = Errno.EINVAL;
                    return -1;
                }

                if (request == PtraceRequest.PT_CONTINUE && addr != 1)
                {
                    (p.Threads.FirstOrDefault(t => t.Lwp == p.XThread) ?? p.Threads[0]).Rip = (ulong)addr;
                }

                if (p.DropNextResumeSignal)
                {
                    // Transparent attach (issue 24's reading of main): the first resume after the attach stop
                    // drops the signal a PT_CONTINUE or PT_DETACH gives it.
                    p.DropNextResumeSignal = false;
                    if (request is PtraceRequest.PT_CONTINUE or PtraceRequest.PT_DETACH)
                    {
                        data = 0;
                    }
                }

                if (request == PtraceRequest.PT_DETACH)
                {
                    // sys_process.c PT_DETACH: untraced, back to the original parent, threads unsuspended; pending
                    // signals stay pending (a queued SIGSTOP then stops the detached process for real).
                    p.Traced = false;
                    p.Parent = p.OriginalParent;
                    p.EventMask = 0;
                    p.AttachStopFirst = false;
                    foreach (var t in p.Threads)
                    {
                        t.Suspended = false;
                    }
                }

                ResumeProcess(p, request == PtraceRequest.PT_KILL ? Signals.SIGKILL : data, request == PtraceRequest.PT_STEP ? thread : null);
                return 0;

            case PtraceRequest.PT_IO:
                return PtIo(p, (PtraceIoDesc*)addr, out errno);

            case PtraceRequest.PT_LWPINFO:
                if (data <= 0 || data > sizeof(PtraceLwpInfo))
                {
                    errno = Errno.EINVAL;
                    return -1;
                }

                var info = LwpInfo(p, thread);
                Buffer.MemoryCopy(&info, (void*)addr, data, data);
                return 0;

            case PtraceRequest.PT_GETREGS:
                *(Reg*)addr = new Reg
                {
                    r_rip = (long)thread.Rip,
                    r_rsp = (long)StackTop,
                    r_cs = 0x43,
                    r_ss = 0x3b,
                    r_rdi = (long)thread.Arguments[0],
                    r_rsi = (long)thread.Arguments[1],
                    r_rdx = (long)thread.Arguments[2],
                    r_rcx = (long)thread.Arguments[3],
                    r_r8 = (long)thread.Arguments[4],
                    r_r9 = (long)thread.Arguments[5],
                };
                return 0;

            case PtraceRequest.PT_SETREGS:
                thread.Rip = (ulong)((Reg*)addr)->r_rip;
                thread.RipWritten = true;
                thread.RegistersSet.Add(*(Reg*)addr);
                return 0;

            case PtraceRequest.PT_SET_EVENT_MASK:
                if (data != sizeof(int))
                {
                    errno = Errno.EINVAL;
                    return -1;
                }

                var mask = *(int*)addr;
                if ((mask & ~0x3f) != 0)
                {
                    errno = Errno.EINVAL;
                    return -1;
                }

                p.EventMask = mask;
                return 0;

            case PtraceRequest.PT_GET_EVENT_MASK:
                *(int*)addr = p.EventMask;
                return 0;

            case PtraceRequest.PT_GETNUMLWPS:
                return p.Threads.Count;

            case PtraceRequest.PT_GETLWPLIST:
                var n = Math.Min(data, p.Threads.Count);
                for (var i = 0; i < n; i++)
                {
                    ((int*)addr)[i] = p.Threads[i].Lwp;
                }

                return n;

            case PtraceRequest.PT_SUSPEND:
                thread.Suspended = true;
                return 0;

            case PtraceRequest.PT_RESUME:
                thread.Suspended = false;
                return 0;

            default:
                errno = Errno.EINVAL;
                return -1;
        }
    }

    private static int PtIo(FakeProcess p, PtraceIoDesc* desc, out int errno)
    {
        errno = 0;
        var buffer = (byte*)desc->piod_addr;
        var length = (int)desc->piod_len;
        var address = (ulong)desc->piod_offs;
        var write = desc->piod_op is PiodOp.PIOD_WRITE_D or PiodOp.PIOD_WRITE_I;
        if (desc->piod_op is < PiodOp.PIOD_READ_D or > PiodOp.PIOD_WRITE_I)
        {
            errno = Errno.EINVAL;
            return -1;
        }

        var done = 0;
        for (; done < length; done++)
        {
            var ok = write
                ? p.Memory.TryWrite(address + (ulong)done, buffer[done])
                : p.Memory.TryRead(address + (ulong)done, out buffer[done]);
            if (!ok)
            {
                break;
            }
        }

        if (done < length)
        {
            // sys_process.c: proc_rwmem fails with EFAULT after moving the prefix, and sys_ptrace copies the
            // descriptor back only when kern_ptrace succeeded, so the caller's piod_len is unchanged.
            errno = Errno.EFAULT;
            return -1;
        }

        desc->piod_len = (nuint)done;
        return 0;
    }

    private static PtraceLwpInfo LwpInfo(FakeProcess p, FakeThread thread)
    {
        var info = new PtraceLwpInfo { pl_lwpid = thread.Lwp, pl_event = LwpEvent.PL_EVENT_NONE };
        if (p.Report is { } r && r.Lwp == thread.Lwp)
        {
            info.pl_event = r.Event;
            info.pl_flags = r.Flags;
            info.pl_child_pid = r.ChildPid;
            if ((r.Flags & (int)LwpFlags.PL_FLAG_SI) != 0)
            {
                info.pl_siginfo.si_signo = r.Signal;
                info.pl_siginfo.si_code = r.SiCode;
                info.pl_siginfo.si_pid = r.SiPid;
                info.pl_siginfo.si_addr = (nint)r.SiAddr;
            }
        }

        return info;
    }

    private int KillLocked(int pid, int signal, int fromPid, out int errno)
    {
        errno = 0;
        if (!_live.TryGetValue(pid, out var p))
        {
            errno = Errno.ESRCH;
            return -1;
        }

        if (signal != 0)
        {
            SendLocked(p, signal, SiCode.SI_USER, fromPid, fromSelf: false);
        }

        Monitor.PulseAll(_gate);
        return 0;
    }

    /// <summary>kern_sig.c tdsendsignal, for a process (not a thread) target.</summary>
    private void SendLocked(FakeProcess p, int signal, int code, int fromPid, bool fromSelf)
    {
        // "IEEE Std 1003.1-2001: return success when killing a zombie."
        if (p.State == FakeState.Zombie)
        {
            return;
        }

        // siginit puts every SIGPROP_IGNORE signal but SIGCONT in ps_sigignore; tdsendsignal forgets them at once.
        if (IsIgnoredByDefault(signal))
        {
            return;
        }

        if (signal == Signals.SIGCONT)
        {
            // sigqueue_delete_stopmask_proc: a SIGCONT cancels every pending stop signal.
            p.KillSet.Remove(Signals.SIGSTOP);
            p.Queued.RemoveAll(q => Signals.IsStopSignal(q.Signal));
        }
        else if (Signals.IsStopSignal(signal))
        {
            // sigqueue_delete_proc(p, SIGCONT) and P_CONTINUED cleared.
            p.Queued.RemoveAll(q => q.Signal == Signals.SIGCONT);
            p.ContinuedFlag = false;
        }

        QueueSignal(p, signal, code, fromPid);
        if (signal == Signals.SIGKILL && p.Traced)
        {
            p.KillPending = true;
        }

        if (p.State is FakeState.TraceStopped or FakeState.JobStopped)
        {
            // P_SHOULDSTOP: "If traced process is already stopped, then no further action is necessary": the
            // signal (SIGKILL and SIGCONT included) waits in the queue for the next resume.
            if (p.Traced)
            {
                return;
            }

            if (signal == Signals.SIGKILL)
            {
                // "SIGKILL sets process running. It will die elsewhere."
                p.State = FakeState.Running;
            }
            else if (signal == Signals.SIGCONT)
            {
                // A default SIGCONT continues the job-stopped process, sets P_CONTINUED for the parent's
                // wait6(WCONTINUED) and leaves no signal behind.
                p.Queued.RemoveAll(q => q.Signal == Signals.SIGCONT);
                p.ContinuedFlag = true;
                p.State = FakeState.Running;
            }
            else if (Signals.IsStopSignal(signal))
            {
                // "Already stopped, don't need to stop again."
                p.KillSet.Remove(Signals.SIGSTOP);
                p.Queued.RemoveAll(q => q.Signal == signal);
                return;
            }
            else
            {
                // Any other signal waits until the process is continued.
                return;
            }
        }

        // Running (or just continued): a traced process takes the signal at its next step (tdsigwakeup, issignal,
        // ptracestop); an untraced one acts on it now, unless it is the one sending it to itself mid-step.
        if (!p.Traced && !fromSelf)
        {
            RunFreeLocked(p);
        }
    }

    /// <summary>kern_sig.c sigqueue_add: SIGKILL and SIGSTOP keep no ksiginfo and coalesce; others are queued with theirs.</summary>
    private static void QueueSignal(FakeProcess p, int signal, int code, int fromPid)
    {
        if (signal is Signals.SIGKILL or Signals.SIGSTOP)
        {
            p.KillSet.Add(signal);
        }
        else
        {
            p.Queued.Add((signal, code, fromPid));
        }
    }

    /// <summary>
    /// kern_sig.c issignal: the signal to act on next. The attach SIGSTOP first while P2_PTRACE_FSTP is set, else the
    /// lowest pending number (sig_ffs). sigqueue_get fills si_signo only for sq_kill signals: si_code 0, si_pid 0.
    /// </summary>
    private static (int Signal, int Code, int From) TakeSignal(FakeProcess p)
    {
        int signal;
        if (p.Traced && p.AttachStopFirst && p.KillSet.Contains(Signals.SIGSTOP))
        {
            signal = Signals.SIGSTOP;
        }
        else
        {
            signal = p.PendingSet.Min();
        }

        p.AttachStopFirst = false;
        if (p.KillSet.Remove(signal))
        {
            return (signal, 0, 0);
        }

        var index = p.Queued.FindIndex(q => q.Signal == signal);
        var taken = p.Queued[index];
        p.Queued.RemoveAt(index);
        return taken;
    }

    /// <summary>sys/kern/kern_sig.c sigproptbl: the signals whose default action is to ignore them (SIGCONT aside).</summary>
    internal static bool IsIgnoredByDefault(int signal) =>
        signal is FakeSignals.SIGURG or Signals.SIGCHLD or FakeSignals.SIGIO or FakeSignals.SIGWINCH or FakeSignals.SIGINFO;

    private void ResumeProcess(FakeProcess p, int signal, FakeThread? step)
    {
        p.Report = null;
        p.State = FakeState.Running;
        p.Waited = false;
        if (p.KillPending || p.KillSet.Contains(Signals.SIGKILL))
        {
            // A SIGKILL sent while traced: the process dies as soon as it runs (ptracestop, P_KILLED), whatever the
            // tracer passed; after PT_DETACH the queued SIGKILL does the same.
            Die(p, Wait.ExitCode(0, Signals.SIGKILL));
            return;
        }

        if (signal != 0)
        {
            // kern_sig.c issignal after ptracestop: the signal the tracer passes takes its default action (no fake
            // program catches signals).
            if (signal == Signals.SIGKILL)
            {
                Die(p, Wait.ExitCode(0, Signals.SIGKILL));
                return;
            }

            if (Signals.IsStopSignal(signal))
            {
                if (!p.Traced)
                {
                    JobStop(p, signal);
                    return;
                }

                // "Traced or exiting processes should ignore stops."
            }
            else if (signal != Signals.SIGCONT && !IsIgnoredByDefault(signal))
            {
                Die(p, Wait.ExitCode(0, signal));
                return;
            }
        }

        if (step is not null)
        {
            SingleStep(p, step);
            return;
        }

        if (!p.Traced)
        {
            RunFreeLocked(p);
        }
    }

    private void SingleStep(FakeProcess p, FakeThread thread)
    {
        // What would other, not suspended threads do meanwhile? Run their next step if it is the same
        // instruction — through the original byte that is back in the text for the step.
        if (p.NextStep + 1 < p.Steps.Count && p.Steps[p.NextStep] is Call current && current.Thread == p.Threads.IndexOf(thread)
            && p.Steps[p.NextStep + 1] is Call next && next.Address == current.Address && next.Thread < p.Threads.Count
            && !p.Threads[next.Thread].Suspended && p.Threads[next.Thread] != thread)
        {
            p.Memory.TryRead(next.Address, out var b);
            if (b != 0xCC)
            {
                _violations.Add($"pid {p.Pid}: lwp {p.Threads[next.Thread].Lwp} ran through 0x{next.Address:x} unguarded during a step");
                p.Executed[next.Address] = p.ExecutedAt(next.Address) + 1;
                p.Steps.RemoveAt(p.NextStep + 1);
            }
        }

        if (p.NextStep < p.Steps.Count && p.Steps[p.NextStep] is Call call && thread.AtCall && thread.Rip == call.Address)
        {
            if (ExecuteCall(p, thread, call))
            {
                TraceStop(p, Signals.SIGTRAP, (int)LwpFlags.PL_FLAG_SI, SiCode.TRAP_TRACE, 0, thread.Rip, thread.Lwp);
            }

            return;
        }

        thread.Rip += 1;
        TraceStop(p, Signals.SIGTRAP, (int)LwpFlags.PL_FLAG_SI, SiCode.TRAP_TRACE, 0, thread.Rip, thread.Lwp);
    }

    /// <summary>Executes the instruction of a Call step. Returns true when it completed (no trap).</summary>
    private bool ExecuteCall(FakeProcess p, FakeThread thread, Call call)
    {
        if (thread.Trapped && thread.Rip != call.Address)
        {
            // The tracer let the thread go on from somewhere other than the breakpoint: fine only when it emulated
            // the original instruction, that is, wrote RIP to the instruction's end.
            var emulated = thread.RipWritten && thread.Rip == call.Address + (ulong)OriginalLength(p, call.Address);
            if (!emulated)
            {
                _violations.Add($"pid {p.Pid}: lwp {thread.Lwp} resumed at 0x{thread.Rip:x} after the int3 at 0x{call.Address:x} " +
                    "(PC neither rewound nor past an emulated instruction)");
            }

            Complete(p, thread, call);
            return true;
        }

        if (!thread.AtCall)
        {
            thread.AtCall = true;
            thread.Rip = call.Address;
            Enter(p, thread, call);
        }

        p.Memory.TryRead(call.Address, out var opcode);
        if (opcode == 0xCC)
        {
            thread.Rip = call.Address + 1;
            thread.Trapped = true;
            thread.RipWritten = false;
            if (p.Traced)
            {
                TraceStop(p, Signals.SIGTRAP, (int)LwpFlags.PL_FLAG_SI, SiCode.TRAP_BRKPT, 0, thread.Rip, thread.Lwp);
            }
            else
            {
                _violations.Add($"pid {p.Pid}: untraced, died of SIGTRAP at an int3 at 0x{call.Address:x}");
                Die(p, Wait.ExitCode(0, Signals.SIGTRAP));
            }

            return false;
        }

        Complete(p, thread, call);
        return true;
    }

    /// <summary>The registers and stack a call leaves at its target's first instruction, where the script gives them.</summary>
    private static void Enter(FakeProcess p, FakeThread thread, Call call)
    {
        if (call.Arguments is { } arguments)
        {
            thread.Arguments = [.. arguments, .. new ulong[6 - arguments.Count]];
        }

        if (call.ReturnAddress != 0)
        {
            var bytes = BitConverter.GetBytes(call.ReturnAddress);
            for (var i = 0; i < bytes.Length; i++)
            {
                _ = p.Memory.TryWrite(StackTop + (ulong)i, bytes[i]);
            }
        }
    }

    /// <summary>The instruction took effect (run, stepped or emulated): count it, apply it, move the script on.</summary>
    private static void Complete(FakeProcess p, FakeThread thread, Call call)
    {
        p.Executed[call.Address] = p.ExecutedAt(call.Address) + 1;
        if (call.Counter != 0)
        {
            var counter = BitConverter.ToInt64(p.Memory.Read(call.Counter, 8));
            var bytes = BitConverter.GetBytes(counter + 1);
            for (var i = 0; i < 8; i++)
            {
                _ = p.Memory.TryWrite(call.Counter + (ulong)i, bytes[i]);
            }
        }

        thread.Rip = call.Address + (ulong)OriginalLength(p, call.Address);
        thread.AtCall = false;
        thread.Trapped = false;
        p.NextStep++;
    }

    /// <summary>The length of the instruction the file has at <paramref name="address"/> (int3 or not in memory).</summary>
    private static int OriginalLength(FakeProcess p, ulong address)
    {
        var decoder = Iced.Intel.Decoder.Create(64, new Iced.Intel.ByteArrayCodeReader(p.Pristine.Read(address, 16)));
        decoder.IP = address;
        decoder.Decode(out var instruction);
        return Math.Max(1, instruction.Length);
    }

    /// <summary>Runs one unit of a running process. Returns false when it is blocked (nothing can happen until a signal).</summary>
    private bool Advance(FakeProcess p)
    {
        if (p.Traced && p.TransparentStopPending)
        {
            // Transparent attach: the attach stop is a SIGSTOP report without siginfo, and the signal of the
            // first resume after it is dropped.
            p.TransparentStopPending = false;
            p.DropNextResumeSignal = true;
            TraceStop(p, Signals.SIGSTOP, 0, 0, 0, 0, p.Threads[0].Lwp, evented: false);
            return true;
        }

        if (p.PendingSet.Any())
        {
            var (signal, code, from) = TakeSignal(p);
            if (p.Traced)
            {
                // issignal: "If traced, always stop" (ptracestop); td_si has si_signo set, so PL_FLAG_SI.
                TraceStop(p, signal, (int)LwpFlags.PL_FLAG_SI, code, from, 0, p.Threads[0].Lwp);
            }
            else if (signal == Signals.SIGKILL)
            {
                Die(p, Wait.ExitCode(0, signal));
            }
            else if (Signals.IsStopSignal(signal))
            {
                JobStop(p, signal);
            }
            else if (signal != Signals.SIGCONT && !IsIgnoredByDefault(signal))
            {
                Die(p, Wait.ExitCode(0, signal));
            }

            return true;
        }

        if (p.VforkDonePending && p.VforkChild == 0)
        {
            p.VforkDonePending = false;
            TraceStop(p, Signals.SIGTRAP, (int)LwpFlags.PL_FLAG_VFORK_DONE, 0, 0, 0, p.Threads[0].Lwp, evented: false);
            return true;
        }

        if (p.VforkChild != 0 || p.NextStep >= p.Steps.Count)
        {
            return false;
        }

        var step = p.Steps[p.NextStep];
        var traced = p.Traced;
        var mask = (PtraceEvents)p.EventMask;
        switch (step)
        {
            case Call call:
                var thread = p.Threads[Math.Min(call.Thread, p.Threads.Count - 1)];
                if (thread.Suspended)
                {
                    return false;
                }

                ExecuteCall(p, thread, call);
                return true;

            case SpawnThread:
                var born = new FakeThread { Lwp = _nextLwp++, Rip = p.Image?.Entry ?? 0 };
                p.Threads.Add(born);
                p.NextStep++;
                if (traced && mask.HasFlag(PtraceEvents.PTRACE_LWP))
                {
                    TraceStop(p, Signals.SIGTRAP, (int)(LwpFlags.PL_FLAG_BORN | LwpFlags.PL_FLAG_SCX), 0, 0, 0, born.Lwp, evented: false);
                }

                return true;

            case EndThread end:
                var ending = p.Threads[end.Ending];
                p.NextStep++;
                if (traced && mask.HasFlag(PtraceEvents.PTRACE_LWP))
                {
                    TraceStop(p, Signals.SIGTRAP, (int)LwpFlags.PL_FLAG_EXITED, 0, 0, 0, ending.Lwp, evented: false);
                }

                return true;

            case Fork fork:
                p.NextStep++;
                var child = NewProcess(null, p.Argv, traced && mask.HasFlag(PtraceEvents.PTRACE_FORK) ? TracerPid : p.Pid);
                child.Memory = fork.Vfork ? p.Memory : p.Memory.Clone();
                child.Pristine = p.Pristine.Clone();
                child.Mappings = [.. p.Mappings];
                child.Image = p.Image;
                child.ImagePath = p.ImagePath;
                child.Steps = [.. fork.ChildSteps];
                child.Threads[0].Rip = p.Threads[0].Rip;
                if (fork.Vfork)
                {
                    p.VforkChild = child.Pid;
                    child.VforkParent = p.Pid;
                }

                if (traced && mask.HasFlag(PtraceEvents.PTRACE_FORK))
                {
                    child.Traced = true;
                    child.OriginalParent = p.Pid;
                    // kern_fork.c fork_return: the child stops with SIGSTOP on its way out of fork(), so its first
                    // report carries PL_FLAG_CHILD and PL_FLAG_SCX, and no siginfo (ptracestop with si NULL).
                    TraceStop(child, Signals.SIGSTOP, (int)(LwpFlags.PL_FLAG_CHILD | LwpFlags.PL_FLAG_SCX), 0, 0, 0, child.Threads[0].Lwp, evented: false);
                    var flags = LwpFlags.PL_FLAG_FORKED | LwpFlags.PL_FLAG_SCX | (fork.Vfork ? LwpFlags.PL_FLAG_VFORKED : 0);
                    TraceStop(p, Signals.SIGTRAP, (int)flags, 0, 0, 0, p.Threads[0].Lwp, evented: false, childPid: child.Pid);
                }
                else
                {
                    RunFreeLocked(child);
                }

                return true;

            case ExecArgv0:
                var target = p.Argv.Count > 3 ? p.Argv[3] : "";
                if (!_files.TryGetValue(target, out var image))
                {
                    Die(p, Wait.ExitCode(127, 0));
                }
                else if (!image.Executable)
                {
                    Die(p, Wait.ExitCode(126, 0));
                }
                else
                {
                    ExecImage(p, image, [target, .. p.Argv.Skip(4)]);
                }

                return true;

            case Exec exec:
                ExecImage(p, _files[exec.Path], exec.Argv ?? [exec.Path]);
                return true;

            case Exit exit:
                Die(p, Wait.ExitCode(exit.Code & 0xff, 0));
                return true;

            case Store store:
                p.NextStep++;
                var value = BitConverter.GetBytes(store.Value);
                for (var i = 0; i < value.Length; i++)
                {
                    _ = p.Memory.TryWrite(store.Address + (ulong)i, value[i]);
                }

                return true;

            case MapLibrary map:
                p.NextStep++;
                MapInto(p, map.Library);
                return true;

            case UnmapLibrary unmap:
                p.NextStep++;
                foreach (var (segment, _) in p.Mappings.Where(m => m.Path == unmap.Path).ToList())
                {
                    p.Memory.Unmap(segment.Address);
                    p.Pristine.Unmap(segment.Address);
                }

                p.Mappings.RemoveAll(m => m.Path == unmap.Path);
                return true;

            case Repeat repeat:
                p.Steps = [.. repeat.Body, repeat];
                p.NextStep = 0;
                return true;

            case Sleep sleep:
                // kern_nanosleep: tsleep_sbt puts the thread on a sleep queue with a timeout; it is off the CPU (and
                // runs no step) until the timeout fires. Signals were looked at above, as sleepq_catch_signals does.
                var now = DateTime.UtcNow;
                p.WakeAt ??= now + sleep.Duration;
                if (now < p.WakeAt)
                {
                    return false;
                }

                p.WakeAt = null;
                p.NextStep++;
                return true;

            case Raise raise:
                p.NextStep++;
                SendLocked(p, raise.Signal, SiCode.SI_USER, p.Pid, fromSelf: true);
                return true;

            default:
                return false;
        }
    }

    private void ExecImage(FakeProcess p, FakeImage image, IReadOnlyList<string> argv)
    {
        var keep = p.Threads[0];
        p.Threads.Clear();
        keep.Rip = image.Entry;
        keep.AtCall = false;
        keep.Trapped = false;
        keep.Suspended = false;
        p.Threads.Add(keep);
        LoadImage(p, image);
        p.Image = image;
        p.ImagePath = image.Path;
        p.Argv = argv;
        p.Steps = [.. image.StepsFor(argv)];
        p.NextStep = 0;
        p.WakeAt = null;
        ReleaseVforkParent(p);
        if (p.Traced && ((PtraceEvents)p.EventMask).HasFlag(PtraceEvents.PTRACE_EXEC))
        {
            TraceStop(p, Signals.SIGTRAP, (int)(LwpFlags.PL_FLAG_EXEC | LwpFlags.PL_FLAG_SCX), 0, 0, 0, keep.Lwp, evented: false);
        }
    }

    private void ReleaseVforkParent(FakeProcess child)
    {
        if (child.VforkParent != 0 && _live.TryGetValue(child.VforkParent, out var parent))
        {
            child.VforkParent = 0;
            parent.VforkChild = 0;
            // The parent reports PL_FLAG_VFORK_DONE once it runs again (fork_rfppwait, then the event stop).
            parent.VforkDonePending = parent.Traced && ((PtraceEvents)parent.EventMask).HasFlag(PtraceEvents.PTRACE_VFORK);
            Monitor.PulseAll(_gate);
        }
    }

    private static void TraceStop(
        FakeProcess p, int signal, int flags, int siCode, int siPid, ulong siAddr, int lwp, bool evented = true, int childPid = 0)
    {
        p.State = FakeState.TraceStopped;
        p.Waited = false;
        p.XThread = lwp;
        p.Report = new FakeReport(Wait.StopCode(signal), lwp, LwpEvent.PL_EVENT_SIGNAL, flags, signal,
            evented ? siCode : 0, siPid, siAddr, childPid);
    }

    private static void JobStop(FakeProcess p, int signal)
    {
        p.State = FakeState.JobStopped;
        p.Waited = false;
        p.WaitStatus = Wait.StopCode(signal);
    }

    private void Die(FakeProcess p, int status)
    {
        p.State = FakeState.Zombie;
        p.WaitStatus = status;
        p.Report = null;
        ReleaseVforkParent(p);
        if (p.Parent == InitPid)
        {
            // init reaps its children at once.
            _live.Remove(p.Pid);
        }

        Monitor.PulseAll(_gate);
    }

    private void RunFreeLocked(FakeProcess p)
    {
        for (var i = 0; i < 100_000 && !p.Traced && p.State == FakeState.Running; i++)
        {
            if (!Advance(p))
            {
                return;
            }
        }
    }

    private FakeProcess NewProcess(FakeImage? image, IReadOnlyList<string> argv, int parent, int? pid = null)
    {
        var p = new FakeProcess
        {
            Pid = pid ?? _nextPid++,
            StartTime = 1_700_000_000_000_000 + (ulong)++_started,
            Parent = parent,
            OriginalParent = parent,
            Memory = new FakeMemory(),
            Pristine = new FakeMemory(),
            Image = image,
            ImagePath = image?.Path ?? "",
            Argv = argv,
            Steps = image is null ? [] : [.. image.StepsFor(argv)],
        };
        p.Threads.Add(new FakeThread { Lwp = _nextLwp++, Rip = image?.Entry ?? 0 });
        if (image is not null)
        {
            LoadImage(p, image);
        }

        _live[p.Pid] = p;
        _all[p.Pid] = p;
        return p;
    }

    /// <summary>A fresh address space: the image's segments, its libraries, and a scratch data page.</summary>
    private static void LoadImage(FakeProcess p, FakeImage image)
    {
        p.Memory = new FakeMemory();
        p.Pristine = new FakeMemory();
        p.Mappings = [];
        MapInto(p, new FakeLibrary(image.Path, image.Segments));
        foreach (var library in image.Libraries)
        {
            MapInto(p, library);
        }

        p.Memory.Map(ScratchPage, new byte[0x1000]);
        p.Memory.Map(StackTop, new byte[0x1000]);
        if (image.StackBelowTop > 0)
        {
            p.Memory.Map(StackTop - (ulong)image.StackBelowTop, Enumerable.Repeat((byte)0xEE, image.StackBelowTop).ToArray());
        }
    }

    private static void MapInto(FakeProcess p, FakeLibrary library)
    {
        foreach (var segment in library.Segments)
        {
            p.Memory.Map(segment.Address, (byte[])segment.Bytes.Clone());
            p.Pristine.Map(segment.Address, (byte[])segment.Bytes.Clone());
            p.Mappings.Add((segment, library.Path));
        }
    }

    /// <summary>
    /// A kinfo_proc (sys/sys/user.h, 1088 bytes on amd64) with what the adapter reads: ki_structsize, ki_pid,
    /// ki_siglist (offset 104; kern_proc.c fill_kinfo_proc_only copies p_siglist there), ki_start and ki_emul.
    /// </summary>
    private static byte[] KinfoProcBytes(FakeProcess p)
    {
        var bytes = new byte[KinfoProc.Size];
        BitConverter.GetBytes(KinfoProc.Size).CopyTo(bytes, 0);
        BitConverter.GetBytes(p.Pid).CopyTo(bytes, KinfoProc.PidOffset);
        BitConverter.GetBytes(p.StartTime / 1_000_000).CopyTo(bytes, KinfoProc.StartOffset);
        BitConverter.GetBytes(p.StartTime % 1_000_000).CopyTo(bytes, KinfoProc.StartOffset + 8);
        System.Text.Encoding.ASCII.GetBytes(p.Image?.Emulation ?? "FreeBSD ELF64").CopyTo(bytes, KinfoProc.EmulOffset);
        foreach (var signal in p.PendingSet)
        {
            var word = (signal - 1) / 32;
            var bits = BitConverter.ToUInt32(bytes, KinfoProc.SiglistOffset + (4 * word)) | (1u << ((signal - 1) % 32));
            BitConverter.GetBytes(bits).CopyTo(bytes, KinfoProc.SiglistOffset + (4 * word));
        }

        return bytes;
    }

    /// <summary>Elf64_Auxinfo pairs (a_type, a_val): AT_BASE when there is a dynamic linker, then AT_NULL.</summary>
    private static byte[] AuxvBytes(FakeProcess p)
    {
        var rtldBase = p.Image?.RtldBase ?? 0;
        long[] pairs = rtldBase == 0 ? [0, 0] : [AuxType.AT_BASE, (long)rtldBase, 0, 0];
        return MemoryMarshal.AsBytes(pairs.AsSpan()).ToArray();
    }

    /// <summary>Packed kinfo_vmentry records, as sys/kern/kern_proc.c builds them for KERN_PROC_VMMAP.</summary>
    private static byte[] VmMapBytes(FakeProcess p)
    {
        List<(ulong Start, ulong End, ulong Offset, int Type, int Prot, string Path)> entries =
        [
            .. p.Mappings.Select(m => (m.Segment.Address, m.Segment.End, m.Segment.FileOffset, Kvme.KVME_TYPE_VNODE, m.Segment.Protection, m.Path)),
            (ScratchPage, ScratchPage + 0x1000, 0UL, Kvme.KVME_TYPE_DEFAULT, Kvme.KVME_PROT_READ | Kvme.KVME_PROT_WRITE, ""),
        ];
        entries.Sort((x, y) => x.Start.CompareTo(y.Start));
        var pathOffset = (int)Marshal.OffsetOf<KinfoVmEntry>(nameof(KinfoVmEntry.kve_path));
        using var stream = new MemoryStream();
        foreach (var e in entries)
        {
            var path = Encoding.UTF8.GetBytes(e.Path);
            var size = (pathOffset + path.Length + 1 + 7) & ~7;
            var record = new byte[size];
            var entry = new KinfoVmEntry
            {
                kve_structsize = size,
                kve_type = e.Type,
                kve_start = e.Start,
                kve_end = e.End,
                kve_offset = e.Offset,
                kve_protection = e.Prot,
            };
            new ReadOnlySpan<byte>(&entry, pathOffset).CopyTo(record);
            path.CopyTo(record, pathOffset);
            stream.Write(record);
        }

        return stream.ToArray();
    }

    private static string RequestName(int request) => request switch
    {
        PtraceRequest.PT_CONTINUE => "PT_CONTINUE",
        PtraceRequest.PT_KILL => "PT_KILL",
        PtraceRequest.PT_STEP => "PT_STEP",
        PtraceRequest.PT_ATTACH => "PT_ATTACH",
        PtraceRequest.PT_DETACH => "PT_DETACH",
        PtraceRequest.PT_IO => "PT_IO",
        PtraceRequest.PT_LWPINFO => "PT_LWPINFO",
        PtraceRequest.PT_GETNUMLWPS => "PT_GETNUMLWPS",
        PtraceRequest.PT_GETLWPLIST => "PT_GETLWPLIST",
        PtraceRequest.PT_SUSPEND => "PT_SUSPEND",
        PtraceRequest.PT_RESUME => "PT_RESUME",
        PtraceRequest.PT_SET_EVENT_MASK => "PT_SET_EVENT_MASK",
        PtraceRequest.PT_GET_EVENT_MASK => "PT_GET_EVENT_MASK",
        PtraceRequest.PT_GETREGS => "PT_GETREGS",
        PtraceRequest.PT_SETREGS => "PT_SETREGS",
        _ => $"PT_{request}",
    };
}
