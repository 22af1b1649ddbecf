using Microsoft.Extensions.Logging;
using ProcHex.Ports;
using static Interop;

namespace ProcHex.Backends.FreeBSD;

/// <summary>
/// How a victim is started without forking managed code: posix_spawn a shell that stops itself, attach to it
/// while it is stopped, then let it exec the program; the exec stop (PL_FLAG_EXEC) is the first instruction of the
/// new image. Same trampoline as the Linux backend.
/// </summary>
internal static class Trampoline
{
    public const string Shell = "/bin/sh";

    /// <summary>
    /// $0 is the resolved program path, "$@" the caller's arguments after argv[0]. FreeBSD's sh has no
    /// <c>exec -a</c>, so the program's argv[0] is its path, not the caller's argv[0] (see README).
    /// </summary>
    public const string Script = "kill -STOP $$; exec \"$0\" \"$@\"";

    /// <summary>sh's exit statuses when exec fails (POSIX "Command Search and Execution").</summary>
    public const int NotFoundStatus = 127;

    public const int NotExecutableStatus = 126;

    /// <summary>Starts <paramref name="request"/>'s program traced, stopped at its first instruction; nothing stays behind when it fails.</summary>
    public static FreeBsdProcess Create(PtraceCalls ptrace, ProcessStartRequest request, ILogger logger, ProcHexMetrics metrics)
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
        var file = Resolve(ptrace.Kernel, request.File, pathVariable, out var errno);
        if (errno != 0)
        {
            throw new ProcessStartException(Errno.Describe(errno), Errno.KindOf(errno), errno);
        }

        var spawnError = ptrace.Kernel.PosixSpawn(Shell, Argv(file, request.Arguments), environment, out var pid);
        if (spawnError != 0)
        {
            throw new ProcessStartException($"cannot start {Shell}: {Errno.Describe(spawnError)}", Errno.KindOf(spawnError), spawnError);
        }

        try
        {
            return ControlNewProcess(ptrace, pid, logger, metrics);
        }
        catch
        {
            // Nothing stays behind: the half-started process is killed and reaped.
            ptrace.KillAndReap(pid);
            throw;
        }
    }

    private static FreeBsdProcess ControlNewProcess(PtraceCalls ptrace, int pid, ILogger logger, ProcHexMetrics metrics)
    {
        // 1. The shell's own SIGSTOP: a job-control stop of an untraced child, so WUNTRACED.
        var status = ptrace.WaitFor(pid, Wait.WUNTRACED);
        if (!Wait.IfStopped(status))
        {
            throw new ProcessStartException($"the start-up shell ended before it stopped ({Describe(status)})");
        }

        // 2. PT_ATTACH clears that stop and stops the process for us (sys_process.c, PT_ATTACH). The first stop
        //    after it is the attach stop, whatever its siginfo says (see IsTransparentAttach).
        if (ptrace.Raw(PtraceRequest.PT_ATTACH, pid, 0, 0, out var errno) == -1)
        {
            throw new ProcessStartException($"cannot trace the new process: {Errno.Describe(errno)}", Errno.KindOf(errno), errno);
        }

        status = ptrace.WaitFor(pid, 0);
        if (!Wait.IfStopped(status))
        {
            throw new ProcessStartException($"the start-up shell ended during attach ({Describe(status)})");
        }

        // 3. Run to the exec. PTRACE_EXEC is the default mask; set it explicitly, nothing else yet.
        ptrace.SetEventMask(pid, PtraceEvents.PTRACE_EXEC);
        ptrace.ContinueWith(pid, 0);
        while (true)
        {
            status = ptrace.WaitFor(pid, 0);
            if (Wait.IfExited(status))
            {
                throw Wait.ExitStatus(status) switch
                {
                    NotFoundStatus => new ProcessStartException(Errno.Describe(Errno.ENOENT), TracerErrorKind.NotFound, Errno.ENOENT),
                    NotExecutableStatus => new ProcessStartException(
                        "Permission denied or not an executable (exec format error, bad interpreter or a directory)", TracerErrorKind.NotExecutable, Errno.ENOEXEC),
                    var code => new ProcessStartException($"the start-up shell exited with status {code} before exec"),
                };
            }

            if (Wait.IfSignaled(status))
            {
                throw new ProcessStartException($"the start-up shell died from signal {Wait.TermSignal(status)} before exec");
            }

            var info = ptrace.LwpInfo(pid);
            if ((info.Flags & LwpFlags.PL_FLAG_EXEC) != 0)
            {
                // The image that runs, whatever the path was: killed and reaped by the caller if foreign.
                ArchitectureCheck.RefuseProcess(ptrace.Kernel, pid);
                return new FreeBsdProcess(
                    ptrace.Kernel, pid, GrabAccess.Control, created: true, info.pl_lwpid, transparentAttach: false, logger) { Metrics = metrics };
            }

            var signal = Wait.StopSignal(status);
            ptrace.ContinueWith(pid, signal == Signals.SIGTRAP || Signals.IsStopSignal(signal) ? 0 : signal);
        }
    }

    private static string Describe(int status) =>
        Wait.IfSignaled(status) ? $"signal {Wait.TermSignal(status)}" : $"status {Wait.ExitStatus(status)}";

    private static List<string> CurrentEnvironment() =>
        [.. System.Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .Select(e => $"{e.Key}={e.Value}")];

    public static List<string> Argv(string resolvedFile, IReadOnlyList<string> arguments) =>
        ["sh", "-c", Script, resolvedFile, .. arguments.Skip(1)];

    /// <summary>
    /// Resolves FILE as execvp would (a name without a slash is searched in PATH), so that a missing or
    /// non-executable file fails here with errno's reason instead of as a shell exit status.
    /// </summary>
    public static string Resolve(IFreeBsdKernel kernel, string file, string? path, out int errno)
    {
        errno = 0;
        if (file.Contains('/', StringComparison.Ordinal))
        {
            _ = kernel.Access(file, Interop.Sys.X_OK, out errno);
            return file;
        }

        var firstError = Interop.Errno.ENOENT;
        foreach (var dir in (path ?? "/bin:/usr/bin").Split(':'))
        {
            var candidate = Path.Join(dir.Length == 0 ? "." : dir, file);
            if (kernel.Access(candidate, Interop.Sys.X_OK, out var e) == 0)
            {
                return candidate;
            }

            if (e == Interop.Errno.EACCES)
            {
                firstError = e;
            }
        }

        errno = firstError;
        return file;
    }
}
