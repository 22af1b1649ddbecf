using ProcHex.Ports;

namespace ProcHex.Backends.Linux;

/// <summary>
/// Every kernel interaction of the Linux adapter, and nothing else: ptrace, waitpid, kill, process_vm_readv,
/// /proc/PID/mem, posix_spawn, access, sigaction and the /proc files. <see cref="LinuxKernel"/> calls glibc and reads
/// /proc; the deterministic simulation's fake kernel (src/Backends.Linux.Simulation) implements the same members, so
/// everything above this line (owner thread, grab, create, stop handling) runs unchanged over either.
/// </summary>
/// <remarks>
/// Failures come back as errno values, 0 meaning success, because only the adapter decides which errno is an error
/// (ESRCH from a thread that is exiting is not). The /proc readers are the exception: they fail as the file reads
/// they stand for do, with <see cref="IOException"/> (gone) or <see cref="UnauthorizedAccessException"/>, or say
/// null, as documented per member. Linux binds a tracee to the thread that attached it (and waitpid(-1) sees only
/// the calling thread's children), so the ptrace, waitpid and spawn members are called on the owner thread only; the
/// others from any thread.
/// </remarks>
internal interface ILinuxKernel
{
    /// <summary>
    /// <c>ptrace(request, tid, address, data)</c> for the requests that return no data: SEIZE, INTERRUPT, LISTEN,
    /// CONT, DETACH, SETOPTIONS, SINGLESTEP, SYSCALL, KILL. Returns 0 or the errno.
    /// </summary>
    int Ptrace(int request, int tid, nint address, nint data);

    /// <summary>
    /// <c>ptrace(PTRACE_PEEKDATA, tid, address)</c>, the word itself unused: 0 or the errno. It checks the credentials
    /// the tracer attached with, unlike /proc/PID/mem and process_vm_readv (EIO when they no longer allow access).
    /// </summary>
    int PeekData(int tid, ulong address);

    /// <summary><c>ptrace(PTRACE_GETREGS, tid, 0, &amp;regs)</c>: 0 or the errno.</summary>
    int GetRegs(int tid, out Interop.UserRegs regs);

    /// <summary><c>ptrace(PTRACE_SETREGS, tid, 0, &amp;regs)</c>: 0 or the errno.</summary>
    int SetRegs(int tid, in Interop.UserRegs regs);

    /// <summary>
    /// <c>ptrace(PTRACE_GETREGSET, tid, NT_X86_XSTATE, &amp;iov)</c>: the thread's x87, SSE and AVX state (what an
    /// inferior call must give back besides the general registers) into <paramref name="buffer"/>; 0 or the errno,
    /// <paramref name="length"/> the bytes filled. A kernel that cannot says ENOSYS.
    /// </summary>
    int GetExtendedState(int tid, Span<byte> buffer, out int length)
    {
        length = 0;
        return Interop.Errno.ENOSYS;
    }

    /// <summary><c>ptrace(PTRACE_SETREGSET, tid, NT_X86_XSTATE, &amp;iov)</c>: 0 or the errno.</summary>
    int SetExtendedState(int tid, ReadOnlySpan<byte> state) => Interop.Errno.ENOSYS;

    /// <summary>
    /// <c>ptrace(PTRACE_GETSIGMASK, tid, 8, &amp;mask)</c>: the stopped thread's blocked signals (bit n-1 for signal n);
    /// 0 or the errno. A kernel that cannot (before 3.11, or the fake) says ENOSYS.
    /// </summary>
    int GetSignalMask(int tid, out ulong mask)
    {
        mask = 0;
        return Interop.Errno.ENOSYS;
    }

    /// <summary><c>ptrace(PTRACE_SETSIGMASK, tid, 8, &amp;mask)</c>: 0 or the errno (SIGKILL and SIGSTOP stay unblocked).</summary>
    int SetSignalMask(int tid, ulong mask) => Interop.Errno.ENOSYS;

    /// <summary>
    /// Maps the file behind descriptor <paramref name="fd"/> of process <paramref name="pid"/> (/proc/PID/fd/FD, opened
    /// anew) into the tracer, shared and read-write, whole: how the tracer sees counters a victim increments (issue 18).
    /// The mapping outlives the victim. Null with <paramref name="errno"/> set when it cannot be opened or mapped.
    /// </summary>
    ISharedMapping? MapProcessFile(int pid, int fd, out int errno)
    {
        errno = Interop.Errno.ENOSYS;
        return null;
    }

    /// <summary><c>ptrace(PTRACE_GETEVENTMSG, tid, 0, &amp;message)</c>: 0 or the errno.</summary>
    int GetEventMessage(int tid, out ulong message);

    /// <summary><c>ptrace(PTRACE_GETSIGINFO, tid, 0, &amp;siginfo)</c>, the fields the adapter reads: 0 or the errno.</summary>
    int GetSigInfo(int tid, out SigInfo info);

    /// <summary>
    /// <c>ptrace(PTRACE_PEEKSIGINFO, tid, ...)</c> over the stopped thread's private queue: whether a SIGTRAP the
    /// kernel raised (an int3, si_code SI_KERNEL) waits there, not yet taken. False when it cannot be read.
    /// </summary>
    bool HasPendingKernelTrap(int tid);

    /// <summary>
    /// <c>waitpid(pid, &amp;status, options)</c>: Result is the tid reported, 0 (WNOHANG, nothing to report) or -1
    /// with Errno set. Blocks unless WNOHANG is given. Never pid -1 without __WNOTHREAD: the host's own children
    /// (Process.Start) would be reaped, and the runtime fails fast when it finds them gone.
    /// </summary>
    (int Result, int Status, int Errno) WaitPid(int pid, int options);

    /// <summary><c>kill(pid, signal)</c>: 0 or the errno.</summary>
    int Kill(int pid, int signal);

    /// <summary>
    /// <c>process_vm_readv</c> of one range into <paramref name="destination"/>: the bytes read, or -1 with
    /// <paramref name="errno"/> set. Any thread, traced or not; stops at the first unreadable page.
    /// </summary>
    int ProcessVmReadv(int pid, ulong address, Span<byte> destination, out int errno);

    /// <summary>
    /// <c>open("/proc/PID/mem", O_RDWR | O_CLOEXEC)</c>: the file, or null with <paramref name="errno"/> set. It is
    /// bound to the address space it was opened on (an exec needs a new one).
    /// </summary>
    IProcMemFile? OpenProcMem(int pid, out int errno);

    /// <summary>
    /// <c>posix_spawn(&amp;pid, path, actions, attr, argv, envp)</c> as a child of the calling thread, with every signal
    /// set to its default and none blocked, and what <paramref name="setup"/> asks for done before the exec: the
    /// descriptors dup2'd onto 0, 1 and 2, the chdir, ASLR off. Returns 0 or the errno (of the exec or of a file action).
    /// </summary>
    int PosixSpawn(string path, IReadOnlyList<string> argv, IReadOnlyList<string> envp, SpawnSetup setup, out int pid);

    /// <summary>
    /// <c>open(path, flags | O_CLOEXEC, 0666)</c>: the descriptor, or -1 with <paramref name="errno"/> set. For what a
    /// created process's standard descriptors are connected to; the caller closes it with <see cref="Close"/>.
    /// </summary>
    int OpenFile(string path, int flags, out int errno);

    /// <summary><c>pipe2(fds, O_CLOEXEC)</c>: 0 or the errno.</summary>
    int Pipe(out int readEnd, out int writeEnd);

    /// <summary><c>close(fd)</c> of a descriptor from <see cref="OpenFile"/> or <see cref="Pipe"/>.</summary>
    void Close(int fd);

    /// <summary><c>prlimit(pid, resource, {soft, hard}, NULL)</c>: 0 or the errno.</summary>
    int SetResourceLimit(int pid, int resource, ulong soft, ulong hard);

    /// <summary><c>access(path, mode)</c>: 0 or the errno.</summary>
    int Access(string path, int mode);

    /// <summary>
    /// <c>sigaction(SIGCHLD)</c> read, then written back with SA_NOCLDSTOP added when a handler (not SIG_DFL or
    /// SIG_IGN) is in place without it. True when it changed the disposition.
    /// </summary>
    bool SkipChildStopSignals();

    /// <summary>
    /// Starts the owner's wake process (owner only): a tracee of the calling thread, seized with EXITKILL, that stops
    /// for every <see cref="Wake"/>. The owner continues it (PTRACE_CONT, the signal dropped) after each stop and
    /// starts another when it ends. Returns its pid.
    /// </summary>
    /// <exception cref="TracerException">It could not be traced (ptrace not permitted).</exception>
    /// <exception cref="ProcessStartException">It could not be started.</exception>
    int StartWakeProcess();

    /// <summary><c>kill(wakePid, SIGUSR1)</c>: makes the owner's blocking <see cref="WaitPid"/> return. Any thread.</summary>
    void Wake(int wakePid);

    /// <summary>
    /// Lets about <paramref name="milliseconds"/> pass (nanosleep) while the caller waits for the victim to get
    /// somewhere on its own. The fake kernel runs its world instead: time there is what its victims do.
    /// </summary>
    void Sleep(int milliseconds);

    /// <summary>The calling thread's tid (gettid), which /proc/PID/status names as TracerPid of what it traces.</summary>
    int GetTid();

    /// <summary>The numeric entries of /proc: every process's pid.</summary>
    IReadOnlyList<int> Processes();

    /// <summary>The state letter of /proc/PID/stat ('R', 'S', 'T', 't', 'Z', ...), or null when gone.</summary>
    char? State(int pid);

    /// <summary>Field <paramref name="number"/> (1-based, as in proc(5)) of /proc/PID/stat, or null.</summary>
    ulong? StatField(int pid, int number);

    /// <summary>The value of a "Name:\tvalue" line of /proc/PID/status, or null.</summary>
    string? StatusField(int pid, string name);

    /// <summary>TracerPid of /proc/PID/status: the tid of the thread tracing it, 0 when untraced or gone.</summary>
    int TracerPid(int pid);

    /// <summary>Where the proc file system is read ("/proc", or the host's seen from a container: issue 22 item 4).</summary>
    string ProcRoot => "/proc";

    /// <summary>kernel.yama.ptrace_scope (0 to 3), or null when this kernel has no Yama (or the fake does not say).</summary>
    int? PtraceScope() => null;

    /// <summary>
    /// A "Name:\tvalue" line of the calling thread's own /proc/thread-self/status (Uid, Gid, CapEff): the credentials
    /// the kernel checks when this thread traces. Null when unknown.
    /// </summary>
    string? CallerStatusField(string name) => null;

    /// <summary>The owner uid of the files in /proc/PID: 0 when the process is not dumpable, else its effective uid; null when unknown.</summary>
    uint? ProcessOwner(int pid) => null;

    /// <summary>
    /// The directory through which the paths a process maps resolve from here: null when it sees our file system,
    /// else /proc/PID/root (another mount namespace or root: a container, a chroot).
    /// </summary>
    string? ObjectRoot(int pid) => null;

    /// <summary>
    /// Raises the soft RLIMIT_NOFILE to the hard one (every controlled victim holds one descriptor): the limits
    /// before and after, or null when it could not be read or changed. The fake kernel has no limit.
    /// </summary>
    (ulong Before, ulong After, ulong Hard)? RaiseOpenFileLimit() => null;

    /// <summary>The tids in /proc/PID/task; empty when gone.</summary>
    IReadOnlyList<int> Threads(int pid);

    /// <summary>The text of /proc/PID/maps.</summary>
    /// <exception cref="IOException">Gone.</exception>
    /// <exception cref="UnauthorizedAccessException">Not allowed to read it.</exception>
    string ReadMaps(int pid);

    /// <summary>The bytes of /proc/PID/auxv (readable with the access ptrace-reading the process needs).</summary>
    /// <exception cref="IOException">Gone.</exception>
    /// <exception cref="UnauthorizedAccessException">Not allowed to read it.</exception>
    byte[] ReadAuxv(int pid);

    /// <summary><c>readlink("/proc/PID/exe")</c>, a trailing " (deleted)" included; null when it is no link.</summary>
    /// <exception cref="IOException">Gone.</exception>
    /// <exception cref="UnauthorizedAccessException">Not allowed to read it.</exception>
    string? ReadExeLink(int pid);

    /// <summary>
    /// The first <see cref="Elf.ElfMachine.HeaderBytes"/> bytes of /proc/PID/exe, the ELF header of the image it runs
    /// (fewer when the file is shorter).
    /// </summary>
    /// <exception cref="IOException">Gone.</exception>
    /// <exception cref="UnauthorizedAccessException">Not allowed to read it.</exception>
    byte[] ReadExeHeader(int pid);

    /// <summary>
    /// Each thread of /proc/PID/task with the user PC of /proc/PID/task/TID/syscall, without stopping anything.
    /// </summary>
    /// <exception cref="TracerException">Gone (<see cref="TracerException.IsGone"/>), or not allowed to read them.</exception>
    IReadOnlyList<ThreadSnapshot> ThreadSnapshots(int pid);
}

/// <summary>/proc/PID/mem opened by <see cref="ILinuxKernel.OpenProcMem"/>. Owner only.</summary>
internal interface IProcMemFile : IDisposable
{
    /// <summary><c>pread</c> at <paramref name="address"/>: the bytes read, or -1 with <paramref name="errno"/> set.</summary>
    int PRead(ulong address, Span<byte> destination, out int errno);

    /// <summary>
    /// <c>pwrite</c> at <paramref name="address"/> (text included: the kernel breaks copy-on-write): the bytes
    /// written, or -1 with <paramref name="errno"/> set.
    /// </summary>
    int PWrite(ulong address, ReadOnlySpan<byte> source, out int errno);
}

/// <summary>A file mapped shared into the tracer by <see cref="ILinuxKernel.MapProcessFile"/>. Any thread.</summary>
internal interface ISharedMapping : IDisposable
{
    /// <summary>The mapping's length in bytes.</summary>
    int Length { get; }

    /// <summary>The 8-byte word at <paramref name="offset"/> (aligned), read without tearing; 0 once disposed.</summary>
    ulong ReadUInt64(int offset);
}

/// <summary>What <see cref="ILinuxKernel.PosixSpawn"/> sets up in the child before its exec (issue 22 item 1).</summary>
/// <param name="WorkingDirectory">The chdir (posix_spawn_file_actions_addchdir_np); null stays.</param>
/// <param name="Input">The descriptor dup2'd onto 0; -1 inherits.</param>
/// <param name="Output">The descriptor dup2'd onto 1; -1 inherits.</param>
/// <param name="Error">The descriptor dup2'd onto 2; -1 inherits.</param>
/// <param name="NoRandomize">personality(ADDR_NO_RANDOMIZE) for the child.</param>
internal readonly record struct SpawnSetup(string? WorkingDirectory, int Input, int Output, int Error, bool NoRandomize)
{
    /// <summary>Nothing: the child inherits all.</summary>
    public static SpawnSetup Plain { get; } = new(null, -1, -1, -1, false);
}

/// <summary>The fields of a <c>siginfo_t</c> the adapter reads.</summary>
/// <param name="Signo">si_signo.</param>
/// <param name="Code">si_code: SI_KERNEL for an int3, SI_USER for kill(2), ...</param>
/// <param name="Pid">si_pid: the sender, for signals sent with kill(2).</param>
internal readonly record struct SigInfo(int Signo, int Code, int Pid);
