namespace ProcHex.Backends.FreeBSD;

/// <summary>What one waitpid returned.</summary>
internal readonly record struct WaitResult(int Result, int Status, int Errno);

/// <summary>
/// The thread that waits for one victim.
/// </summary>
/// <remarks>
/// Threading model of the FreeBSD backend. FreeBSD binds tracing to the process, not to a thread (kern_ptrace
/// checks <c>p_pptr == td_proc</c>), so unlike Linux any tracer thread may make ptrace requests; the Linux
/// backend's owner thread is not needed for correctness here. What does need a thread of its own is the blocking
/// <c>waitpid(pid)</c>: the core awaits stops without holding the victim lock (S13) and must be able to abandon
/// the await (cancellation) without losing the stop. So each victim gets one long-lived waiter thread, never a
/// pool thread; it waits only for its own pid (never -1, which would reap children the host application started
/// with Process.Start and make the runtime fail), only when armed, and hands the status to whoever asks next.
/// ptrace requests are made on the caller's thread under the victim's own lock (<c>FreeBsdProcess._gate</c>), which
/// never nests inside another lock of this backend. One thread per victim is the price of having no
/// <c>__WNOTHREAD</c> on FreeBSD; a SIGCHLD-driven sweep with WNOHANG would serve many victims with one thread.
/// </remarks>
internal sealed class VictimWaiter : IDisposable
{
    private readonly IFreeBsdKernel _kernel;
    private readonly int _pid;
    private readonly object _gate = new();
    private readonly Thread _thread;
    private TaskCompletionSource<WaitResult>? _pending;
    private int _pendingOptions;
    private bool _armed;
    private bool _quit;

    public VictimWaiter(IFreeBsdKernel kernel, int pid)
    {
        _kernel = kernel;
        _pid = pid;
        _thread = new Thread(Run) { IsBackground = true, Name = $"prochex-freebsd-wait-{pid}" };
        _thread.Start();
    }

    /// <summary>
    /// The next wait status. A wait abandoned by cancellation stays pending and its status goes to the next caller,
    /// so a stop is never lost.
    /// </summary>
    public Task<WaitResult> NextAsync(int options)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_quit, this);
            if (_pending is null)
            {
                _pending = new TaskCompletionSource<WaitResult>(TaskCreationOptions.RunContinuationsAsynchronously);
                _pendingOptions = options;
                _armed = true;
                Monitor.PulseAll(_gate);
            }

            return _pending.Task;
        }
    }

    /// <summary>Takes the completed result so the next <see cref="NextAsync"/> starts a fresh wait.</summary>
    public void Consume(Task<WaitResult> completed)
    {
        lock (_gate)
        {
            if (ReferenceEquals(_pending?.Task, completed))
            {
                _pending = null;
            }
        }
    }

    /// <summary>
    /// A status that is there now, without blocking: that of a pending wait once it has completed, else a waitpid with
    /// WNOHANG on the caller's thread. False when there is none yet (a pending wait keeps its status for its caller).
    /// </summary>
    public bool TryNext(int options, out WaitResult result)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_quit, this);
            if (_pending is { } pending)
            {
                var ready = pending.Task.IsCompletedSuccessfully;
                result = ready ? pending.Task.Result : default;
                if (ready)
                {
                    _pending = null;
                }

                return ready;
            }
        }

        int r;
        int status;
        int errno;
        do
        {
            r = _kernel.WaitPid(_pid, out status, options | Interop.Wait.WNOHANG, out errno);
        }
        while (r == -1 && errno == Interop.Errno.EINTR);

        result = new WaitResult(r, status, errno);
        return r != 0;
    }

    /// <summary>Blocks the caller for the next status (used inside Resume and Release, where the victim is known to stop soon).</summary>
    public WaitResult Next(int options)
    {
        var task = NextAsync(options);
        var result = task.GetAwaiter().GetResult();
        Consume(task);
        return result;
    }

    private void Run()
    {
        while (true)
        {
            int options;
            TaskCompletionSource<WaitResult> pending;
            lock (_gate)
            {
                while (!_armed && !_quit)
                {
                    Monitor.Wait(_gate);
                }

                if (_quit)
                {
                    return;
                }

                _armed = false;
                options = _pendingOptions;
                pending = _pending!;
            }

            WaitResult result;
            do
            {
                var r = _kernel.WaitPid(_pid, out var status, options, out var errno);
                result = new WaitResult(r, status, errno);
            }
            while (result.Result == -1 && result.Errno == Interop.Errno.EINTR);

            pending.TrySetResult(result);
        }
    }

    /// <summary>
    /// Ends the thread. Called after the victim is reaped or detached; a thread still blocked in waitpid returns as
    /// soon as the kernel answers (ECHILD after a detach) and then sees the quit flag.
    /// </summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _quit = true;
            _pending?.TrySetException(new ObjectDisposedException(nameof(VictimWaiter)));
            Monitor.PulseAll(_gate);
        }
    }
}
