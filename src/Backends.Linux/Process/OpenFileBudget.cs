using Microsoft.Extensions.Logging;

namespace ProcHex.Backends.Linux;

/// <summary>
/// The descriptor budget (issue 22 item 2). Every victim held for control keeps exactly one descriptor, its
/// /proc/PID/mem; nothing else is held per victim (ELF files are read and closed, /proc files are read and closed,
/// the owner's wake process is one per owner). So the victims one process can control are bounded by RLIMIT_NOFILE
/// less what the host keeps open, and the backend raises the soft limit to the hard one when it starts. (The CoreCLR
/// runtime raises it too when it starts, so this matters for hosts that lowered it since, and for hosts without that
/// runtime's start-up; either way the backend says what it did.)
/// </summary>
/// <remarks>
/// Why the descriptor is kept rather than opened on demand: a /proc/PID/mem opened on one image moves nothing once
/// that image is gone, and that is how an exec whose report the kernel dropped is found without ever writing into
/// the new image (<see cref="MemoryFile"/>, LinuxProcess.OnImageGone). A file opened again after being closed would be
/// bound to whatever image the process has by then, and a write meant for the old one would land in the new one.
/// </remarks>
internal static class OpenFileBudget
{
    private static int _raised;

    /// <summary>Raises the soft limit to the hard one, once per process, and says so.</summary>
    public static void Raise(ILinuxKernel kernel, ILogger logger)
    {
        if (Interlocked.Exchange(ref _raised, 1) != 0)
        {
            return;
        }

        switch (kernel.RaiseOpenFileLimit())
        {
            case null:
                Log.OpenFileLimitUnchanged(logger);
                break;
            case var (before, after, _) when after > before:
                Log.OpenFileLimitRaised(logger, before, after);
                break;
        }
    }
}
