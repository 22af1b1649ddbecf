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
}
