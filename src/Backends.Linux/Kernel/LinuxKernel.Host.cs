using ProcHex.Ports;
using static ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux;

/// <summary>The tracer's own process and the proc file system: SIGCHLD, the wake process, /proc reads, the open-file limit.</summary>
internal sealed partial class LinuxKernel
{
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
