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

    public FreeBsdTracer(IFreeBsdKernel kernel, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        _kernel = kernel;
        _ptrace = new PtraceCalls(kernel);
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
    }

    public string Name => "freebsd";

    public ValueTask<ITracedProcess> CreateAsync(ProcessStartRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult<ITracedProcess>(Create(request));
    }

    public ValueTask<ITracedProcess> GrabAsync(int pid, GrabAccess access, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult<ITracedProcess>(Grab(pid, access));
    }

    private FreeBsdProcess Create(ProcessStartRequest request)
    {
        if (string.IsNullOrEmpty(request.File))
        {
            throw new ProcessStartException(Errno.Describe(Errno.ENOENT), Errno.ENOENT);
        }

        var environment = request.Environment ?? CurrentEnvironment();
        var pathVariable = environment.FirstOrDefault(e => e.StartsWith("PATH=", StringComparison.Ordinal))?[5..];
        var file = Trampoline.Resolve(_kernel, request.File, pathVariable, out var errno);
        if (errno != 0)
        {
            throw new ProcessStartException(Errno.Describe(errno), errno);
        }

        var spawnError = _kernel.PosixSpawn(Trampoline.Shell, Trampoline.Argv(file, request.Arguments), environment, out var pid);
        if (spawnError != 0)
        {
            throw new ProcessStartException($"cannot start {Trampoline.Shell}: {Errno.Describe(spawnError)}", spawnError);
        }

        try
        {
            return ControlNewProcess(pid);
        }
        catch
        {
            // Nothing stays behind: the half-started process is killed and reaped.
            _ = _kernel.Kill(pid, Signals.SIGKILL, out _);
            _ = _kernel.WaitPid(pid, out _, 0, out _);
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

        // 2. PT_ATTACH clears that stop and queues its own SIGSTOP (sys_process.c, PT_ATTACH).
        if (_ptrace.Raw(PtraceRequest.PT_ATTACH, pid, 0, 0, out var errno) == -1)
        {
            throw new ProcessStartException($"cannot trace the new process: {Errno.Describe(errno)}", errno);
        }

        status = WaitFor(pid, 0);
        while (Wait.IfStopped(status) && !IsAttachStop(pid, status))
        {
            ContinueWith(pid, Wait.StopSignal(status));
            status = WaitFor(pid, 0);
        }

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
                    Trampoline.NotFoundStatus => new ProcessStartException(Errno.Describe(Errno.ENOENT), Errno.ENOENT),
                    Trampoline.NotExecutableStatus => new ProcessStartException(
                        "Permission denied or not an executable (exec format error, bad interpreter or a directory)", Errno.ENOEXEC),
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
                return new FreeBsdProcess(
                    _kernel, pid, GrabAccess.Control, created: true, info.pl_lwpid, expectAttachStop: false, pendingSignal: 0, Logger());
            }

            var signal = Wait.StopSignal(status);
            ContinueWith(pid, signal == Signals.SIGTRAP || Signals.IsStopSignal(signal) ? 0 : signal);
        }
    }

    private FreeBsdProcess Grab(int pid, GrabAccess access)
    {
        if (pid <= 0)
        {
            throw new GrabException("no such process", Errno.ESRCH);
        }

        if (pid == _kernel.GetPid())
        {
            throw new GrabException("cannot grab our own process", Errno.EINVAL);
        }

        if (access == GrabAccess.ReadOnly)
        {
            // Existence only: kill(pid, 0) answers ESRCH for a missing process and EPERM for one we may not signal.
            if (_kernel.Kill(pid, 0, out var e) == -1 && e == Errno.ESRCH)
            {
                throw new GrabException("no such process", e);
            }

            return new FreeBsdProcess(_kernel, pid, access, created: false, pid, expectAttachStop: false, pendingSignal: 0, Logger());
        }

        if (_ptrace.Raw(PtraceRequest.PT_ATTACH, pid, 0, 0, out var errno) == -1)
        {
            throw new GrabException(errno switch
            {
                Errno.ESRCH => "no such process (or it is a zombie)",
                Errno.EPERM => "permission denied: run as root, or as the same user with security.bsd.unprivileged_proc_debug=1 " +
                    "and without a set-id image (p_candebug)",
                Errno.EBUSY => "already traced by another process",
                Errno.EINVAL => "cannot trace a system process or an ancestor of the tracer",
                _ => Errno.Describe(errno),
            }, errno);
        }

        var status = WaitFor(pid, 0);
        if (!Wait.IfStopped(status))
        {
            throw new GrabException(Wait.IfSignaled(status)
                ? $"process died from signal {Wait.TermSignal(status)}"
                : $"process exited with status {Wait.ExitStatus(status)}");
        }

        // The attach SIGSTOP is usually the first stop; if another signal got there first, keep it for delivery
        // and swallow the SIGSTOP when it comes.
        var attachStop = IsAttachStop(pid, status);
        var signal = Wait.StopSignal(status);
        var pending = attachStop || signal == Signals.SIGTRAP || Signals.IsStopSignal(signal) ? 0 : signal;
        var info = _ptrace.LwpInfo(pid);
        return new FreeBsdProcess(_kernel, pid, access, created: false, info.pl_lwpid, expectAttachStop: !attachStop, pending, Logger());
    }

    private bool IsAttachStop(int pid, int status)
    {
        if (Wait.StopSignal(status) != Signals.SIGSTOP)
        {
            return false;
        }

        var info = _ptrace.LwpInfo(pid);
        return (info.Flags & LwpFlags.PL_FLAG_SI) == 0 || info.pl_siginfo.si_code == SiCode.SI_KERNEL;
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
