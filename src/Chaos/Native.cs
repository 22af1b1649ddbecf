using System.Runtime.InteropServices;

namespace ProcHex.Chaos;

/// <summary>The two calls the runner makes itself: signals (the injected faults) and reaping its own leftovers at the end.</summary>
internal static partial class Native
{
    public const int SIGKILL = 9, SIGCONT = 18, SIGSTOP = 19;
    public const int WNOHANG = 1;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "waitpid", SetLastError = true)]
    public static partial int WaitPid(int pid, out int status, int options);
}
