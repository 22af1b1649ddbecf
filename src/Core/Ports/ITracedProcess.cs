namespace ProcHex.Ports;

/// <summary>
/// One victim as the OS backend sees it. The core holds exactly one per handle and serialises its
/// use with the victim lock; a backend must still tolerate <see cref="RequestStop"/> and the memory
/// members being called while another call is in progress (teardown, read-only readers).
/// </summary>
public interface ITracedProcess : IDisposable
{
    /// <summary>The victim's process id.</summary>
    int Pid { get; }

    /// <summary>Whether the backend holds it for control or only reads it.</summary>
    GrabAccess Access { get; }

    /// <summary>
    /// The pid the process has in the pid namespace it lives in, when that is not the tracer's (Linux: the last field
    /// of NSpid in /proc/PID/status); null in the tracer's own namespace or when the OS cannot tell.
    /// </summary>
    int? NamespacePid => null;

    /// <summary>Symbols and mappings of the current image.</summary>
    ISymbolTable Symbols { get; }

    /// <summary>
    /// Starts reporting what the control loop needs (S12): breakpoint and single-step faults,
    /// exec completion and fork. Called once, while stopped, before the first <see cref="Resume"/>.
    /// </summary>
    void BeginControl();

    /// <summary>
    /// Waits for the next stop, exit or loss of control. Must not require the victim lock: the core calls
    /// it without holding it (S13). Cancellation abandons the wait, not the victim.
    /// </summary>
    ValueTask<StopEvent> WaitForStopAsync(CancellationToken cancellationToken);

    /// <summary>
    /// The stop, exit or loss that <see cref="WaitForStopAsync"/> would return at once, taken without waiting; null
    /// when a wait would block. Never called while a wait is pending. Destroy reads what is left this way once the
    /// control loop has quit, so that the victim is let go as it is, not as the loop last saw it (S9).
    /// </summary>
    StopEvent? TakeReadyStop();

    /// <summary>Sets the stopped victim running again, delivering any signal it stopped for.</summary>
    void Resume();

    /// <summary>
    /// The victim was stopped by someone else (S20). Leave it stopped, make sure a crash of the tracer
    /// now leaves it stopped too (neither killed nor resumed), and report <see cref="StopReason.ResumedByOthers"/>
    /// (or its death) from the next <see cref="WaitForStopAsync"/> once somebody else resumes it. Must not poll.
    /// </summary>
    void AwaitExternalResume();

    /// <summary>
    /// Asks the victim to stop so that the pending or next <see cref="WaitForStopAsync"/> completes: with
    /// <see cref="StopReason.Interrupted"/>, or with whatever stop, exit or loss won the race. It must complete
    /// even when the victim is already stopped (a failed <see cref="Resume"/>) or waits in
    /// <see cref="AwaitExternalResume"/>: teardown relies on it to wake the control loop.
    /// </summary>
    void RequestStop();

    /// <summary>
    /// The user registers of <paramref name="threadId"/>, a thread stopped for the stop being answered (the one that hit
    /// a breakpoint). Called only while that stop is answered, and only when a handler asks for them.
    /// </summary>
    /// <exception cref="TracerException">The thread is gone or not stopped.</exception>
    X64Registers ReadRegisters(int threadId);

    /// <summary>
    /// The first integer argument of <paramref name="threadId"/>, stopped for the stop being answered, where the calling
    /// convention passes it (rdi on x86-64). Read at a function's first instruction it is what the caller passed:
    /// dtrace-utils reads <c>__libc_start_main</c>'s to find <c>main</c> (<c>Pread_first_arg</c>).
    /// </summary>
    /// <exception cref="TracerException">The registers could not be read.</exception>
    ulong ReadFirstArgument(int threadId);

    /// <summary>
    /// The address of <c>main</c> as the executable's entry code (at AT_ENTRY) hands it to the C runtime, for
    /// executables with neither a <c>main</c> symbol nor a <c>__libc_start_main</c> to break on (stripped static
    /// ones). The code is read as it was before any breakpoint; false when it has no shape the backend knows.
    /// </summary>
    /// <exception cref="TracerException">The auxiliary vector or the text could not be read.</exception>
    bool TryFindMainFromEntryCode(out ulong address);

    /// <summary>
    /// The victim's threads as they are now, without stopping any: each with its user program counter where the OS
    /// can tell it (a thread that is blocked or stopped), null while it runs. Serves read-only handles too.
    /// </summary>
    IReadOnlyList<ThreadSnapshot> ReadThreads();

    /// <summary>Writes the trap instruction at <paramref name="address"/> and returns what it replaced.</summary>
    /// <exception cref="TracerException">The text could not be written (S15 keeps the breakpoint inactive).</exception>
    BreakpointPatch PlantBreakpoint(ulong address);

    /// <summary>
    /// Puts the original instruction back. A patch planted before an exec belonged to the old image: removing it
    /// afterwards writes nothing (the backend forgot it at the exec), while one planted into the new image is
    /// restored like any other.
    /// </summary>
    void RemoveBreakpoint(BreakpointPatch patch);

    /// <summary>
    /// <paramref name="threadId"/>, the thread whose breakpoint stop is being answered, is at <paramref name="patch"/>'s
    /// address: arrange for it to execute the original instruction exactly once at the next <see cref="Resume"/>,
    /// leaving the breakpoint planted for every thread and never letting another thread run through the address
    /// unguarded.
    /// </summary>
    /// <exception cref="TracerException">The thread is gone, or is not at the breakpoint (found at the resume by backends that defer the step).</exception>
    void StepOverBreakpoint(int threadId, BreakpointPatch patch);

    /// <summary>Reads victim memory; returns the number of bytes read (short on an unmapped tail).</summary>
    int ReadMemory(ulong address, Span<byte> destination);

    /// <summary>Writes victim memory, text included.</summary>
    void WriteMemory(ulong address, ReadOnlySpan<byte> source);

    /// <summary>
    /// Calls the function at <paramref name="address"/> in the victim, with no arguments the caller chooses (the
    /// backend passes what the platform's resolvers of GNU indirect functions expect), on the thread that reported the
    /// last stop, every other thread held; returns what it returned (rax on x86-64). The victim must be stopped (not
    /// running, not held by others); afterwards its registers, stack and text are exactly as before.
    /// </summary>
    /// <exception cref="InferiorCallException">
    /// The backend cannot make calls, the victim is not stopped, the function faulted, or it did not return within
    /// <paramref name="timeout"/>.
    /// </exception>
    ulong CallFunction(ulong address, TimeSpan timeout) =>
        throw new InferiorCallException($"pid {Pid}: this backend cannot call functions in the victim (needed for 0x{address:x})", TracerErrorKind.Unsupported);

    /// <summary>
    /// Installs in-victim counters (issue 18) at <paramref name="sites"/>, all in one stop of every thread: each entry
    /// jumps to code in the victim that increments a counter the tracer shares, runs the displaced instructions and
    /// jumps back, so a call is counted without a stop. A site that cannot take the jump (its first instructions, no
    /// memory in reach, a breakpoint planted in the bytes it would displace, a backend that cannot) is refused, with
    /// why; the others still count. The victim may run: the backend stops every thread for the transaction and lets run
    /// again what ran; one the core holds stays held. Backends that cannot refuse every site.
    /// </summary>
    /// <returns>One placement per site, in order.</returns>
    /// <exception cref="TracerException">The victim is gone or no longer controlled.</exception>
    IReadOnlyList<CounterPlacement> InstallCounters(IReadOnlyList<CounterSite> sites) =>
        [.. sites.Select(site => CounterPlacement.Refused(site, "this backend cannot count calls in the victim"))];

    /// <summary>
    /// Takes counters out, all in one stop of every thread: each entry gets its original bytes back, and a thread inside
    /// a counter's code is moved to the same place in the original text. Their values stay readable. Removing one that
    /// is already out, or whose image an exec replaced, writes nothing.
    /// </summary>
    /// <exception cref="TracerException">The text could not be written.</exception>
    void RemoveCounters(IReadOnlyList<ISharedCounter> counters)
    {
        if (counters.Count > 0)
        {
            throw new TracerException($"pid {Pid}: this backend installed no counters", TracerErrorKind.InvalidArgument);
        }
    }

    /// <summary>The dynamic linker agent for the current image, or null when it has no dynamic linker.</summary>
    IRtldAgent? OpenRtldAgent();

    /// <summary>Lets go of the victim (S9). After this only <see cref="IDisposable.Dispose"/> is called.</summary>
    void Release(ReleaseMode mode);

    /// <summary>
    /// When the process this object was made for started, in the OS's own clock (Linux: /proc/PID/stat field 22,
    /// clock ticks since boot; FreeBSD: ki_start): with the pid, its identity (issue 17 item 3). Null when the
    /// backend cannot tell.
    /// </summary>
    ulong? StartTime => null;

    /// <summary>
    /// True when <see cref="Pid"/> now names another process: this one ended and the pid was reused (a different
    /// start time). False while it lives, once it is gone without a successor, and when the backend cannot tell.
    /// Any thread; reads the OS, so callers ask only where the pid is not pinned (read-only and dead handles).
    /// </summary>
    bool WasReplaced() => false;

    /// <summary>
    /// The tracer's ends of the pipes a create asked for (<see cref="ProcessStartRequest.StandardOutput"/> and its
    /// siblings); null for a grabbed process or one without pipes. The core disposes them after <see cref="Release"/>,
    /// so a killed victim is gone before its pipes close.
    /// </summary>
    StandardStreams? Streams => null;
}

/// <summary>How a victim is let go.</summary>
public enum ReleaseMode
{
    /// <summary>Detach and leave it running (a grabbed victim).</summary>
    Run,

    /// <summary>Kill it and reap it (a created victim).</summary>
    Kill,

    /// <summary>
    /// Detach and leave it in the stop someone else put it in (S9, S20). The core asks for it from the last report it
    /// took; a backend that can tell leaves the victim running when they have continued it since (their word is last).
    /// </summary>
    Hang,
}

/// <summary>One thread of a victim at a moment: its id and, when known, where it is.</summary>
public readonly record struct ThreadSnapshot(int ThreadId, ulong? ProgramCounter)
{
    /// <summary>Its name (Linux: <c>comm</c>, which a thread may set with pthread_setname_np), when the backend knows it.</summary>
    public string? Name { get; init; }
}

/// <summary>The bytes a breakpoint replaced. Up to eight bytes, enough for any trap instruction.</summary>
/// <param name="Address">Where the trap was written.</param>
/// <param name="OriginalBytes">The text it replaced, little-endian, in the low <paramref name="Length"/> bytes.</param>
/// <param name="Length">How many bytes the trap took (1 for int3).</param>
public readonly record struct BreakpointPatch(ulong Address, ulong OriginalBytes, int Length);
