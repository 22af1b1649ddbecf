using static ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux;

/// <summary>
/// Every ptrace stop of a victim sends SIGCHLD to the tracer's process. Ignored by default, that costs nothing; but
/// once the host has started a process with Process.Start, the .NET runtime handles SIGCHLD, and each stop then
/// wakes its signal thread to look at every child it started: on two cores that halved the breakpoint rate
/// (bench/ProcHex.Peers, whose peers are started with Process.Start). The runtime needs SIGCHLD for children that
/// end, never for children that stop, so the handler in place is kept and only told to skip stops
/// (SA_NOCLDSTOP). The owner checks again whenever it wakes from an idle wait, because the runtime installs its
/// handler only when the host first starts a process, at any time.
/// </summary>
internal static class ChildStopSignals
{
    /// <summary>Adds SA_NOCLDSTOP to the SIGCHLD handler in place, if there is one (not SIG_DFL or SIG_IGN).</summary>
    /// <returns>True when it changed the disposition.</returns>
    public static unsafe bool SkipStops()
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
}
