using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ProcHex.Ports;
using static Interop;

namespace ProcHex.Backends.FreeBSD;

/// <summary>The FreeBSD amd64 ptrace backend.</summary>
public sealed class FreeBsdTracer : IProcessTracer
{
    private readonly IFreeBsdKernel _kernel;
    private readonly PtraceCalls _ptrace;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ProcHexMetrics _metrics;

    /// <summary>The FreeBSD tracer over <paramref name="kernel"/> (the real one, or a fake for tests on any OS).</summary>
    /// <param name="kernel">The system calls it makes.</param>
    /// <param name="loggerFactory">Where its diagnostics go; none when null.</param>
    /// <param name="metrics">Where it counts its step-overs; <see cref="ProcHexMetrics.Shared"/> when null.</param>
    public FreeBsdTracer(IFreeBsdKernel kernel, ILoggerFactory? loggerFactory = null, ProcHexMetrics? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        _kernel = kernel;
        _ptrace = new PtraceCalls(kernel);
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        _metrics = metrics ?? ProcHexMetrics.Shared;
    }

    /// <inheritdoc/>
    public string Name => "freebsd";

    /// <inheritdoc/>
    public ValueTask<ITracedProcess> CreateAsync(ProcessStartRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult<ITracedProcess>(Create(request));
    }

    /// <inheritdoc/>
    public ValueTask<ITracedProcess> GrabAsync(int pid, GrabAccess access, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult<ITracedProcess>(Grab(pid, access));
    }

    /// <inheritdoc/>
    public ulong? StartTimeOf(int pid) => pid > 0 ? ProcessIdentity.StartTime(_kernel, pid) : null;

    private FreeBsdProcess Create(ProcessStartRequest request)
    {
        if (string.IsNullOrEmpty(request.File))
        {
            throw new ProcessStartException(Errno.Describe(Errno.ENOENT), TracerErrorKind.NotFound, Errno.ENOENT);
        }

        // Issue 22 item 1: the options need posix_spawn file actions, procctl(PROC_ASLR_CTL) and prlimit-like calls
        // the kernel seam does not have yet; refused, never ignored. argv[0] is the arguments' first and works.
        if (request.RequestedOptions is { Count: > 0 } options)
        {
            throw new ProcessStartException(
                $"the FreeBSD backend does not support these create options yet: {string.Join(", ", options)}; start without them",
                TracerErrorKind.Unsupported,
                Errno.ENOTSUP);
        }

        var environment = request.Environment ?? CurrentEnvironment();
        var pathVariable = environment.FirstOrDefault(e => e.StartsWith("PATH=", StringComparison.Ordinal))?[5..];
        var file = Trampoline.Resolve(_kernel, request.File, pathVariable, out var errno);
        if (errno != 0)
        {
            throw new ProcessStartException(Errno.Describe(errno), Errno.KindOf(errno), errno);
        }

        var spawnError = _kernel.PosixSpawn(Trampoline.Shell, Trampoline.Argv(file, request.Arguments), environment, out var pid);
        if (spawnError != 0)
        {
            throw new ProcessStartException($"cannot start {Trampoline.Shell}: {Errno.Describe(spawnError)}", Errno.KindOf(spawnError), spawnError);
        }

        try
        {
            return ControlNewProcess(pid);
        }
        catch
        {
            // Nothing stays behind: the half-started process is killed and reaped.
            KillAndReap(pid);
            throw;
        }
    }

    private FreeBsdProcess ControlNewProcess(int pid)
    {
        // 1. The shell's own SIGSTOP: a job-control stop of an untraced child, so WUNTRACED.
        var status = WaitFor(pid, Wait.WUNTRACED);
        if (!Wait.IfStopped(status))
        {
            throw new ProcessStartException($"the start-up shell ended before it stopped ({Describe(status)})");
        }

        // 2. PT_ATTACH clears that stop and stops the process for us (sys_process.c, PT_ATTACH). The first stop
        //    after it is the attach stop, whatever its siginfo says (see IsTransparentAttach).
        if (_ptrace.Raw(PtraceRequest.PT_ATTACH, pid, 0, 0, out var errno) == -1)
        {
            throw new ProcessStartException($"cannot trace the new process: {Errno.Describe(errno)}", Errno.KindOf(errno), errno);
        }

        status = WaitFor(pid, 0);
        if (!Wait.IfStopped(status))
        {
            throw new ProcessStartException($"the start-up shell ended during attach ({Describe(status)})");
        }

        // 3. Run to the exec. PTRACE_EXEC is the default mask; set it explicitly, nothing else yet.
        _ptrace.SetEventMask(pid, PtraceEvents.PTRACE_EXEC);
        ContinueWith(pid, 0);
        while (true)
        {
            status = WaitFor(pid, 0);
            if (Wait.IfExited(status))
            {
                throw Wait.ExitStatus(status) switch
                {
                    Trampoline.NotFoundStatus => new ProcessStartException(Errno.Describe(Errno.ENOENT), TracerErrorKind.NotFound, Errno.ENOENT),
                    Trampoline.NotExecutableStatus => new ProcessStartException(
                        "Permission denied or not an executable (exec format error, bad interpreter or a directory)", TracerErrorKind.NotExecutable, Errno.ENOEXEC),
                    var code => new ProcessStartException($"the start-up shell exited with status {code} before exec"),
                };
            }

            if (Wait.IfSignaled(status))
            {
                throw new ProcessStartException($"the start-up shell died from signal {Wait.TermSignal(status)} before exec");
            }

            var info = _ptrace.LwpInfo(pid);
            if ((info.Flags & LwpFlags.PL_FLAG_EXEC) != 0)
            {
                // The image that runs, whatever the path was: killed and reaped by the caller if foreign.
                ArchitectureCheck.RefuseProcess(_kernel, pid);
                return new FreeBsdProcess(
                    _kernel, pid, GrabAccess.Control, created: true, info.pl_lwpid, transparentAttach: false, Logger()) { Metrics = _metrics };
            }

            var signal = Wait.StopSignal(status);
            ContinueWith(pid, signal == Signals.SIGTRAP || Signals.IsStopSignal(signal) ? 0 : signal);
        }
    }

    /// <summary>FreeBSD's analogue of Linux's kernel.yama.ptrace_scope: whether unprivileged users may debug their own processes.</summary>
    internal const string UnprivilegedDebugSetting = "security.bsd.unprivileged_proc_debug";

    private FreeBsdProcess Grab(int pid, GrabAccess access)
    {
        if (pid <= 0)
        {
            throw new GrabException("no such process", TracerErrorKind.Gone, Errno.ESRCH);
        }

        if (pid == _kernel.GetPid())
        {
            throw new GrabException("cannot grab our own process", TracerErrorKind.InvalidArgument, Errno.EINVAL);
        }

        // Before anything is attached or read as amd64: a foreign process is left running untouched.
        ArchitectureCheck.RefuseProcess(_kernel, pid);
        if (access == GrabAccess.ReadOnly)
        {
            // Existence only: kill(pid, 0) answers ESRCH for a missing process and EPERM for one we may not signal.
            if (_kernel.Kill(pid, 0, out var e) == -1 && e == Errno.ESRCH)
            {
                throw new GrabException("no such process", TracerErrorKind.Gone, e);
            }

            return new FreeBsdProcess(_kernel, pid, access, created: false, pid, transparentAttach: false, Logger()) { Metrics = _metrics };
        }

        if (_ptrace.Raw(PtraceRequest.PT_ATTACH, pid, 0, 0, out var errno) == -1)
        {
            // Issue 22 item 3, minimal here: the kinds this backend tells apart already. EPERM is p_candebug's, whose
            // causes (another user, a set-id image, security.bsd.unprivileged_proc_debug=0) it does not tell apart.
            if (errno is Errno.EBUSY or Errno.EPERM)
            {
                var kind = errno == Errno.EBUSY ? GrabRefusalKind.AlreadyTraced : GrabRefusalKind.Unexplained;
                throw new GrabException(
                    errno == Errno.EBUSY
                        ? "already traced by another process"
                        : "permission denied: run as root, or as the same user with security.bsd.unprivileged_proc_debug=1 and without a set-id image (p_candebug)",
                    new GrabRefusal(kind, UnprivilegedDebugSetting, Privilege: "root"),
                    errno);
            }

            throw new GrabException(errno switch
            {
                Errno.ESRCH => "no such process (or it is a zombie)",
                Errno.EINVAL => "cannot trace a system process or an ancestor of the tracer",
                _ => Errno.Describe(errno),
            }, errno == Errno.EINVAL ? TracerErrorKind.Unsupported : Errno.KindOf(errno), errno);
        }

        var status = WaitFor(pid, 0);
        if (!Wait.IfStopped(status))
        {
            throw new GrabException(Wait.IfSignaled(status)
                ? $"process died from signal {Wait.TermSignal(status)}"
                : $"process exited with status {Wait.ExitStatus(status)}");
        }

        // The first stop after PT_ATTACH is the attach stop: issignal takes the attach SIGSTOP before any other
        // pending signal while P2_PTRACE_FSTP is set (kern_sig.c), and it carries no sender (sigqueue_add).
        var info = _ptrace.LwpInfo(pid);
        return new FreeBsdProcess(_kernel, pid, access, created: false, info.pl_lwpid, IsTransparentAttach(info), Logger()) { Metrics = _metrics };
    }

    /// <summary>
    /// A classic attach stop is a signal stop (PL_FLAG_SI, si_signo SIGSTOP, si_code 0); the transparent one has no
    /// siginfo, and then the signal of the first PT_CONTINUE/PT_DETACH is dropped.
    /// </summary>
    private static bool IsTransparentAttach(Interop.PtraceLwpInfo info) => (info.Flags & LwpFlags.PL_FLAG_SI) == 0;

    /// <summary>
    /// Kills a half-started process and reaps it without blocking on a deferred SIGKILL: PT_KILL when it is
    /// trace-stopped (a kill(2) SIGKILL would wait for the next resume, tdsendsignal), else kill(2), and PT_KILL
    /// again for the SIGKILL signal stop a running traced process reports first.
    /// </summary>
    private void KillAndReap(int pid)
    {
        if (_ptrace.Raw(PtraceRequest.PT_KILL, pid, 0, 0, out _) == -1)
        {
            _ = _kernel.Kill(pid, Signals.SIGKILL, out _);
        }

        for (var i = 0; i < 64; i++)
        {
            if (_kernel.WaitPid(pid, out var status, 0, out var errno) == -1)
            {
                if (errno == Errno.EINTR)
                {
                    continue;
                }

                return;
            }

            if (!Wait.IfStopped(status))
            {
                return;
            }

            _ = _ptrace.Raw(PtraceRequest.PT_KILL, pid, 0, 0, out _);
        }
    }

    private void ContinueWith(int pid, int signal) =>
        _ptrace.Check(PtraceRequest.PT_CONTINUE, pid, PtraceRequest.ResumeHere, signal, "PT_CONTINUE");

    private int WaitFor(int pid, int options)
    {
        while (true)
        {
            if (_kernel.WaitPid(pid, out var status, options, out var errno) != -1)
            {
                return status;
            }

            if (errno != Errno.EINTR)
            {
                throw PtraceCalls.Failure("waitpid", pid, errno);
            }
        }
    }

    private static string Describe(int status) =>
        Wait.IfSignaled(status) ? $"signal {Wait.TermSignal(status)}" : $"status {Wait.ExitStatus(status)}";

    private ILogger Logger() => _loggerFactory.CreateLogger<FreeBsdProcess>();

    private static List<string> CurrentEnvironment() =>
        [.. System.Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .Select(e => $"{e.Key}={e.Value}")];
}
