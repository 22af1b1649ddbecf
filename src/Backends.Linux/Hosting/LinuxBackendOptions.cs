namespace ProcHex;

/// <summary>Tunables of the Linux ptrace backend, set through <c>UseLinux(o => ...)</c>.</summary>
public sealed class LinuxBackendOptions
{
    /// <summary>
    /// Step over a breakpoint by emulating its original instruction when it is a common function opening (one stop
    /// per hit, the trap never leaves the text). Off: every step-over restores the instruction, stops the other
    /// threads and single-steps it out of line (two stops per hit). On by default; turning it off is for
    /// comparing the two paths and for ruling the emulator out when a victim misbehaves.
    /// </summary>
    public bool EmulateStepOver { get; set; } = true;

    /// <summary>
    /// Answer stops on the ptrace owner thread: the control loop's continuation (and with it the breakpoint
    /// handlers, milestone and library callbacks) runs on the thread that took the stop, so a hit costs no thread
    /// switch (about a fifth more hits per second). Off by default: handlers then share that one thread with every
    /// victim, so they must be short, must not block, and must not start processes (a child forked from the owner
    /// thread is reaped by its wait, and the runtime never sees it end); code that awaits ProcHex from a handler's
    /// flow can end up on that thread too. Turn it on when the handlers are yours and small (the prochex CLI does).
    /// A victim whose answer keeps the owner longer than <see cref="SlowAnswerLimit"/> is moved to the thread pool
    /// with a warning.
    /// </summary>
    public bool AnswerStopsOnOwnerThread { get; set; }

    /// <summary>How long one answer may keep the owner thread before its victim is moved to the thread pool.</summary>
    public TimeSpan SlowAnswerLimit { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// Raise the soft RLIMIT_NOFILE of this process to its hard limit when the backend starts (logged), because every
    /// victim held for control keeps one descriptor open (its /proc/PID/mem): with the usual soft limit of 1,024 the
    /// 1,000th victim would otherwise fail to be controlled. On by default; turn it off if the host must keep its soft
    /// limit (a native library that still uses select(2) breaks on descriptors above 1,023). The budget is then
    /// the soft limit minus what the host itself keeps open (issue 22 item 2).
    /// </summary>
    public bool RaiseOpenFileLimit { get; set; } = true;

    /// <summary>
    /// Where the proc file system is mounted: "/proc", or where a tracer running in a container has the host's
    /// mounted (with the host's pid namespace), e.g. "/host/proc" (issue 22 item 4).
    /// </summary>
    public string ProcRoot { get; set; } = "/proc";
}
