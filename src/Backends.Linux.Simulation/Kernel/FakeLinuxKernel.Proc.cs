using Errno = ProcHex.Backends.Linux.Interop.Errno;

namespace ProcHex.Backends.Linux.Simulation.Kernel;

/// <summary>What /proc shows, and memory access that needs no ptrace stop (process_vm_readv, /proc/PID/mem).</summary>
internal sealed partial class FakeLinuxKernel
{
    /// <summary>The state letter of /proc/PID/task/TID/stat (R, S, D, T, t, Z), or null once the thread is gone.</summary>
    public char? ThreadState(int tid) => Find(tid) is { } t ? StateLetter(t) : null;

    /// <summary>The state letter of /proc/PID/stat: the leader's, or null once the process is gone.</summary>
    public char? ProcessState(int pid) =>
        _groups.TryGetValue(pid, out var group) && group.Leader is { } leader ? StateLetter(leader) : null;

    /// <summary>/proc/PID/task: every thread not yet reaped.</summary>
    public IReadOnlyList<int> TaskIds(int pid) =>
        _groups.TryGetValue(pid, out var group) ? group.Tasks.Select(t => t.Tid).Order().ToList() : [];

    /// <summary>TracerPid in /proc/PID/task/TID/status.</summary>
    public int TracerPidOf(int tid) => Find(tid) is { Traced: true } ? TracerPid : 0;

    /// <summary>How many turns of user-space work the thread has done (0 once gone).</summary>
    public long Progress(int tid) => Find(tid)?.Progress ?? 0;

    public IEnumerable<int> Pids => _groups.Keys.Order();

    /// <summary>The task with <paramref name="tid"/>, for checks that look inside the kernel (the simulation's invariants).</summary>
    public FakeTask? TaskOf(int tid) => Find(tid);

    /// <summary>The process <paramref name="pid"/>, until reaped.</summary>
    public FakeThreadGroup? GroupOf(int pid) => _groups.GetValueOrDefault(pid);

    /// <summary>Every process not yet reaped.</summary>
    public IEnumerable<FakeThreadGroup> Groups => _groups.Values;

    /// <summary>process_vm_readv: bytes read, or -errno (EFAULT where nothing is mapped, ESRCH once gone).</summary>
    public int ProcessVmReadv(int pid, ulong address, Span<byte> buffer)
    {
        if (!HasMemory(pid, out var group))
        {
            return -Errno.ESRCH;
        }

        var n = group.Memory.Read(address, buffer);
        return n == 0 && buffer.Length > 0 ? -Errno.EFAULT : n;
    }

    /// <summary>pread on /proc/PID/mem: bytes read, or -errno (EIO where nothing is mapped).</summary>
    public int ReadProcMem(int pid, ulong address, Span<byte> buffer)
    {
        if (!HasMemory(pid, out var group))
        {
            return -Errno.ESRCH;
        }

        var n = group.Memory.Read(address, buffer);
        return n == 0 && buffer.Length > 0 ? -Errno.EIO : n;
    }

    /// <summary>pwrite on /proc/PID/mem, which writes read-only text too (how breakpoints are planted).</summary>
    public int WriteProcMem(int pid, ulong address, ReadOnlySpan<byte> data)
    {
        if (!HasMemory(pid, out var group))
        {
            return -Errno.ESRCH;
        }

        var n = group.Memory.Write(address, data);
        return n == 0 && data.Length > 0 ? -Errno.EIO : n;
    }

    private bool HasMemory(int pid, out FakeThreadGroup group) =>
        _groups.TryGetValue(pid, out group!) && group.Live.Any();

    private static char StateLetter(FakeTask t) => t.State switch
    {
        TaskState.Running => t.Group.Image.StepAt(t.Rip) is Sleep && t.Continuation is null ? 'S' : 'R',
        TaskState.Traced => 't',
        TaskState.Stopped => 'T',
        TaskState.Blocked => 'D',
        _ => 'Z',
    };
}
