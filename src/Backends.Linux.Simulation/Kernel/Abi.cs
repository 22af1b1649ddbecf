using Sys = ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux.Simulation.Kernel;

/// <summary>
/// Linux numbers the fake needs beyond those the adapter names in Interop (the adapter never sends or tests
/// them, so they live here rather than there). Everything else comes from Interop, so both speak one ABI.
/// </summary>
internal static class Abi
{
    public const int SIGILL = 4;
    public const int SIGUSR2 = 12;
    public const int SIGTERM = 15;
    public const int SIGURG = 23;
    public const int SIGWINCH = 28;
    public const int SIGRTMIN = 32;
    public const int NSIG = 64;

    public const int SI_USER = 0;
    public const int SI_TKILL = -6;
    public const int TRAP_TRACE = 2;
    public const int SEGV_MAPERR = 1;

    /// <summary>Every PTRACE_O_* the fake models; the kernel would accept TRACEEXIT and the seccomp ones too.</summary>
    public const int ModelledOptions = Sys.PTRACE_O_TRACESYSGOOD | Sys.PTRACE_O_TRACEFORK | Sys.PTRACE_O_TRACEVFORK
        | Sys.PTRACE_O_TRACECLONE | Sys.PTRACE_O_TRACEEXEC | Sys.PTRACE_O_TRACEVFORKDONE | Sys.PTRACE_O_EXITKILL;

    public const int ModelledWaitOptions = Sys.WNOHANG | Sys.WUNTRACED | Sys.__WNOTHREAD | Sys.__WALL;

    public static bool IsStopSignal(int signal) => signal is Sys.SIGSTOP or Sys.SIGTSTP or Sys.SIGTTIN or Sys.SIGTTOU;

    /// <summary>sig_kernel_ignore: signals whose default action is to do nothing.</summary>
    public static bool IsIgnoredByDefault(int signal) => signal is Sys.SIGCONT or Sys.SIGCHLD or SIGWINCH or SIGURG;

    /// <summary>SYNCHRONOUS_MASK in kernel/signal.c: delivered before any other pending signal.</summary>
    public static bool IsSynchronous(int signal) => signal is Sys.SIGSEGV or SIGILL or Sys.SIGTRAP or 7 /* SIGBUS */ or 8 /* SIGFPE */ or 31 /* SIGSYS */;

    public static bool IsValidSignal(nint signal) => signal is >= 0 and <= NSIG;
}

/// <summary>The kernel's wait status encoding (include/uapi/linux/wait.h, WIFSTOPPED and friends).</summary>
internal static class WaitStatus
{
    /// <summary>A ptrace stop: the stop's exit_code (signal, plus event &lt;&lt; 8) in bits 8..23, 0x7f below.</summary>
    public static int Stopped(int exitCode) => (exitCode << 8) | 0x7f;

    public static int Exited(int code) => (code & 0xff) << 8;

    public static int Killed(int signal) => signal & 0x7f;

    public static bool IsStopped(int status) => (status & 0xff) == 0x7f;

    public static bool IsExited(int status) => (status & 0x7f) == 0;

    public static int StopSignal(int status) => (status >> 8) & 0xff;

    public static int Event(int status) => (status >> 16) & 0xff;

    public static int ExitCode(int status) => (status >> 8) & 0xff;

    public static int TermSignal(int status) => status & 0x7f;
}
