using ProcHex.Ports;
using System.Buffers.Binary;
using System.Text;
using Microsoft.Extensions.Logging;
using static ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux;

/// <summary>
/// Create (S1, S2) without forking managed code. posix_spawn starts a trampoline,
/// <c>/bin/sh -c 'kill -STOP $$; exec "$0"' FILE ARGV...</c> with the victim's environment; the owner seizes it
/// while it is stopped, follows its syscalls to the execve, and there points the call's three arguments at
/// the trampoline's own initial stack: the path string, the argv pointer array from ARGV[0] on, and the envp
/// array. So the program gets exactly the argv and environment asked for (a shell would set $0 as argv[0] and
/// add PWD or SHLVL), with no writes into the trampoline's memory. A failed execve is seen at the syscall's exit
/// with its errno. Success is the PTRACE_EVENT_EXEC stop: the new image, before its first instruction.
/// <para>The create options (issue 22 item 1) are set up on the way, without a managed fork: descriptors and the
/// working directory as posix_spawn file actions (<see cref="CreateSetup"/>), ASLR off as the persona the spawn
/// inherits, resource limits with prlimit on the stopped trampoline, argv[0] as the first of the arguments.</para>
/// </summary>
internal static class Trampoline
{
    private const string Shell = "/bin/sh";
    private const string Script = "kill -STOP $$; exec \"$0\"";
    private const int TrampolineArgs = 4; // sh, -c, script, FILE
    private const long SysExecve = 59;

    /// <summary>Owner thread only.</summary>
    public static LinuxProcess Create(OwnerThread owner, ProcessStartRequest request, ILogger logger)
    {
        var kernel = owner.Kernel;
        var environment = request.Environment ?? InheritedEnvironment();
        var path = ExecutableCheck.Resolve(kernel, request.File, environment);
        if (request.WorkingDirectory is not null && !path.StartsWith('/'))
        {
            // The file is found where the tracer is, as ExecutableCheck looked for it, not in the new directory.
            path = Path.GetFullPath(path);
        }

        var argv = new List<string> { Shell, "-c", Script, path };
        argv.AddRange(request.Arguments);
        using var setup = CreateSetup.Open(kernel, request);
        var error = kernel.PosixSpawn(Shell, argv, environment, setup.Spawn, out var pid);
        setup.CloseChildEnds();
        if (error != 0)
        {
            throw request.WorkingDirectory is { } dir && error is Interop.Errno.ENOENT or Interop.Errno.ENOTDIR or Interop.Errno.EACCES
                ? CreateSetup.WorkingDirectoryError(dir, error)
                : new ProcessStartException(DescribeError(error), Interop.Errno.KindOf(error), error);
        }

        try
        {
            FollowToExec(owner, pid, path, request);

            // The image that runs, whatever the path was (a #! script's interpreter): killed and reaped if foreign.
            ArchitectureCheck.RefuseProcess(kernel, pid);
        }
        catch
        {
            _ = kernel.Kill(pid, SIGKILL);
            while (owner.WaitFor(pid) is { Ended: false })
            {
            }

            throw;
        }

        var process = new LinuxProcess(owner, pid, GrabAccess.Control, created: true, logger) { Streams = setup.TakeStreams() };
        process.AddThread(pid, running: false);
        Log.Created(logger, pid, path);

        // An image we may not read (an unprivileged tracer, an execute-only program): the first wait says lost.
        _ = process.CheckObservable(kernel.ReadRegs(pid).rip);
        return process;
    }

    private static void FollowToExec(OwnerThread owner, int pid, string path, ProcessStartRequest request)
    {
        var kernel = owner.Kernel;
        var argumentCount = request.Arguments.Count;
        var (r, raw, errno) = kernel.WaitPid(pid, WUNTRACED);
        var first = new WaitStatus(raw);
        if (r != pid || !first.Stopped)
        {
            throw new TracerException(
                $"the start-up shell {Shell} ended before it could be traced ({first})", errno == 0 ? TracerErrorKind.Gone : Interop.Errno.KindOf(errno), errno == 0 ? Interop.Errno.ECHILD : errno);
        }

        // Stopped before its exec: the limits the program is to start with.
        CreateSetup.SetLimits(kernel, pid, request.ResourceLimits);

        kernel.PtraceOrThrow(PTRACE_SEIZE, pid, 0, LinuxProcess.BaseOptions | PTRACE_O_EXITKILL, "cannot trace the new process");
        _ = kernel.Kill(pid, SIGCONT);
        var redirected = false;
        while (true)
        {
            if (owner.WaitFor(pid) is not { } status)
            {
                throw new TracerException($"lost pid {pid} while starting it", TracerErrorKind.Gone, Interop.Errno.ECHILD);
            }

            if (status.Ended)
            {
                throw new TracerException(status.Signaled
                    ? $"process died from signal {status.TermSignal}"
                    : $"process exited with status {status.ExitCode}", TracerErrorKind.Gone);
            }

            var signal = status.StopSignal;
            switch (status.Event)
            {
                case PTRACE_EVENT_EXEC:
                    return;
                case 0 when signal == (SIGTRAP | 0x80):
                    var regs = kernel.ReadRegs(pid);
                    var entry = unchecked((long)regs.rax) == -Interop.Errno.ENOSYS;
                    if (entry && (long)regs.orig_rax == SysExecve && !redirected)
                    {
                        Redirect(kernel, pid, ref regs, path, argumentCount);
                        kernel.WriteRegs(pid, regs);
                        redirected = true;
                    }
                    else if (!entry && redirected && (long)regs.orig_rax == SysExecve)
                    {
                        var failure = (int)-unchecked((long)regs.rax);
                        throw new ProcessStartException(DescribeError(failure), Interop.Errno.KindOf(failure), failure);
                    }

                    kernel.PtraceOrThrow(PTRACE_SYSCALL, pid, 0, 0, "cannot follow the new process");
                    break;
                case 0 when signal is not SIGCONT and not SIGSTOP and not SIGTRAP:
                    kernel.PtraceOrThrow(PTRACE_SYSCALL, pid, 0, signal, "cannot follow the new process");
                    break;
                default:
                    // The group-stop left from kill -STOP, its end, and the SIGCONT itself.
                    kernel.PtraceOrThrow(PTRACE_SYSCALL, pid, 0, 0, "cannot follow the new process");
                    break;
            }
        }
    }

    /// <summary>
    /// Points execve at the trampoline's initial stack: argc at mm->start_stack, then argv[], NULL, envp[], NULL.
    /// Checks what it finds there before trusting it.
    /// </summary>
    private static void Redirect(ILinuxKernel kernel, int pid, ref Interop.UserRegs regs, string path, int argumentCount)
    {
        var startStack = kernel.StatField(pid, 28) ?? throw new TracerException($"cannot read /proc/{pid}/stat");
        var argc = ReadU64(kernel, pid, startStack);
        if (argc != (ulong)(TrampolineArgs + argumentCount))
        {
            throw new TracerException($"unexpected start-up stack in pid {pid} (argc {argc})");
        }

        var argvArray = startStack + 8;
        var pathPointer = ReadU64(kernel, pid, argvArray + (8 * 3));
        var expected = Encoding.UTF8.GetBytes(path + "\0");
        var actual = new byte[expected.Length];
        if (kernel.ProcessVmReadv(pid, pathPointer, actual, out _) != actual.Length || !actual.AsSpan().SequenceEqual(expected))
        {
            throw new TracerException($"unexpected start-up stack in pid {pid} (path)");
        }

        regs.rdi = pathPointer;
        regs.rsi = argvArray + (8 * TrampolineArgs);
        regs.rdx = argvArray + (8 * (argc + 1));
    }

    private static ulong ReadU64(ILinuxKernel kernel, int pid, ulong address)
    {
        Span<byte> b = stackalloc byte[8];
        return kernel.ProcessVmReadv(pid, address, b, out _) == 8 ? BinaryPrimitives.ReadUInt64LittleEndian(b) : throw new TracerException($"cannot read pid {pid} at 0x{address:x}");
    }

    private static List<string> InheritedEnvironment()
    {
        var list = new List<string>();
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            list.Add($"{e.Key}={e.Value}");
        }

        return list;
    }
}
