namespace ProcHex.Backends.FreeBSD;

/// <summary>
/// The system calls the FreeBSD adapter makes, and nothing else. <see cref="LibcFreeBsdKernel"/> calls libc.so.7;
/// the test suite's fake implements the same calls on any OS and produces the stop sequences the FreeBSD kernel
/// produces, so everything above this line is exercised on Linux.
/// </summary>
/// <remarks>
/// The calls keep the C shapes on purpose: pointers to the same blittable structs the kernel reads
/// (<c>ptrace_io_desc</c>, <c>ptrace_lwpinfo</c>, <c>reg</c>) cross the seam, so the fake reads and writes them
/// exactly as the kernel would and a layout mistake shows up in tests. Every call returns what the C call returns
/// (-1 on failure) and the errno through <c>errno</c> (0 on success). Every member may be called from any thread.
/// </remarks>
public interface IFreeBsdKernel
{
    /// <summary><c>ptrace(request, pid, addr, data)</c>; FreeBSD request numbers (sys/sys/ptrace.h).</summary>
    int Ptrace(int request, int pid, nint addr, int data, out int errno);

    /// <summary><c>waitpid(pid, &amp;status, options)</c>. Blocks unless WNOHANG (1) is given.</summary>
    int WaitPid(int pid, out int status, int options, out int errno);

    /// <summary><c>kill(pid, signal)</c> with FreeBSD signal numbers.</summary>
    int Kill(int pid, int signal, out int errno);

    /// <summary>
    /// <c>posix_spawn(&amp;pid, path, NULL, attr, argv, envp)</c> with SIGPIPE reset to its default and an empty
    /// signal mask (the .NET runtime ignores SIGPIPE, and ignored signals survive exec). Returns an errno, 0 on success.
    /// </summary>
    int PosixSpawn(string path, IReadOnlyList<string> argv, IReadOnlyList<string> environment, out int pid);

    /// <summary>
    /// <c>sysctl(mib, ..., oldp, &amp;oldLength, NULL, 0)</c>. An empty <paramref name="buffer"/> passes oldp = NULL,
    /// which asks for the size.
    /// </summary>
    int Sysctl(ReadOnlySpan<int> mib, Span<byte> buffer, ref nuint oldLength, out int errno);

    /// <summary><c>access(path, mode)</c>.</summary>
    int Access(string path, int mode, out int errno);

    /// <summary>
    /// <c>pread</c> of <c>/proc/PID/mem</c> (procfs(5), when mounted): the only way to read an untraced process's
    /// memory, for read-only grabs (PT_IO needs the process traced and stopped). Returns the bytes read, -1 on error.
    /// </summary>
    int ReadProcMem(int pid, ulong address, Span<byte> buffer, out int errno);

    /// <summary>The tracer's own pid (getpid): kill(2) stamps it into si_pid, which tells our SIGSTOP from others'.</summary>
    int GetPid();
}
