using System.Buffers.Binary;
using ProcHex.Ports;

namespace ProcHex.Backends.Fake;

/// <summary>The kernel side of the ports: what each <see cref="FakeProcess"/> call does to a victim.</summary>
public sealed partial class FakeKernel
{
    internal FakeProcess Create(ProcessStartRequest request)
    {
        lock (_gate)
        {
            Inject(FakeOperation.Create, 0);
            var image = FindImage(request.File) ?? throw new ProcessStartException(Errno.Describe(Errno.ENOENT), TracerErrorKind.NotFound, Errno.ENOENT);
            if (!image.Executable)
            {
                throw new ProcessStartException(Errno.Describe(Errno.EACCES), TracerErrorKind.PermissionDenied, Errno.EACCES);
            }

            if (request.WorkingDirectory is { } dir && !dir.StartsWith('/'))
            {
                throw new ProcessStartException($"cannot use working directory {dir}: {Errno.Describe(Errno.ENOENT)}", TracerErrorKind.NotFound, Errno.ENOENT);
            }

            var victim = NewVictim(image, request.Arguments);
            if (image.SetId)
            {
                victim.Threads[0].Push([new FakeStep.LoseControl()], 1);
            }

            victim.StartRequest = request;
            victim.WorkingDirectory = request.WorkingDirectory ?? victim.WorkingDirectory;
            for (var fd = 0; fd < 3; fd++)
            {
                victim.Pipes[fd] = request.Stdio[fd].Kind == StdioKind.Pipe ? new FakePipe(input: fd == 0) : null;
            }

            var attachment = new FakeAttachment { KillOnLastClose = true };
            victim.Attachment = attachment;
            HoldWithoutReport(victim, attachment);
            Record(victim, $"created {Format(request.Arguments)}");
            var streams = victim.Pipes.Any(p => p is not null) ? new StandardStreams(victim.Pipes[0], victim.Pipes[1], victim.Pipes[2]) : null;
            return new FakeProcess(this, victim, attachment, GrabAccess.Control) { Streams = streams };
        }
    }

    /// <summary>
    /// What the create of <paramref name="pid"/> asked for (issue 22 item 1: working directory, stdio, ASLR, limits,
    /// argv), recorded as the backend received it; null for a process that was not created through the tracer.
    /// </summary>
    public ProcessStartRequest? StartRequestOf(int pid)
    {
        lock (_gate)
        {
            return _victims.TryGetValue(pid, out var victim) ? victim.StartRequest : null;
        }
    }

    /// <summary>
    /// Completes at once, unless a thread waits in vfork for its child: as on Linux (a killable sleep that
    /// PTRACE_INTERRUPT does not end), it stops, and the grab completes, only once the child execs or exits.
    /// Meanwhile the victim is traced and its other threads are held; the rest of the world runs on.
    /// </summary>
    internal ValueTask<ITracedProcess> Grab(int pid, GrabAccess access, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            Inject(FakeOperation.Grab, pid);
            if (pid == SelfPid && access == GrabAccess.Control)
            {
                throw new GrabException("cannot grab our own process", TracerErrorKind.Busy, Errno.EBUSY);
            }

            if (!_victims.TryGetValue(pid, out var victim))
            {
                throw new GrabException("no such process", TracerErrorKind.Gone, Errno.ESRCH);
            }

            if (victim.Life == VictimLife.Zombie)
            {
                throw new GrabException("process is a zombie", TracerErrorKind.Gone, Errno.ESRCH);
            }

            if (victim.PermissionDenied)
            {
                throw new GrabException("permission denied", TracerErrorKind.PermissionDenied, Errno.EPERM);
            }

            if (access == GrabAccess.ReadOnly)
            {
                Record(victim, "grabbed read-only");
                return ValueTask.FromResult<ITracedProcess>(new FakeProcess(this, victim, null, access));
            }

            if (victim.TracedByOthers || victim.Attachment is not null)
            {
                throw new GrabException("process is already traced", TracerErrorKind.Busy, Errno.EBUSY);
            }

            var attachment = new FakeAttachment();
            victim.Attachment = attachment;
            if (!victim.WaitsInVfork)
            {
                HoldWithoutReport(victim, attachment);
                Record(victim, "grabbed");
                return ValueTask.FromResult<ITracedProcess>(new FakeProcess(this, victim, attachment, access));
            }

            var grab = new PendingGrab(access);
            attachment.PendingGrab = grab;
            attachment.Stopped = true;
            grab.Registration = cancellationToken.UnsafeRegister(_ => AbandonGrab(victim, attachment, grab, cancellationToken), null);
            Record(victim, "grab waits for the vfork to end");
            CheckWatches();
            return new ValueTask<ITracedProcess>(grab.Completion.Task);
        }
    }

    /// <summary>The vfork is over: the thread that waited stops before running anything, and the grab completes.</summary>
    private void CompleteGrab(FakeVictim victim, FakeAttachment attachment)
    {
        var grab = attachment.PendingGrab!;
        attachment.PendingGrab = null;
        grab.Registration.Unregister();
        HoldWithoutReport(victim, attachment);
        Record(victim, "grabbed");
        grab.Completion.TrySetResult(new FakeProcess(this, victim, attachment, grab.Access));
    }

    /// <summary>The grab ends without a hold (given up, the victim died, the tracer crashed): the victim is untraced again.</summary>
    private PendingGrab DropPendingGrab(FakeVictim victim, FakeAttachment attachment, string why)
    {
        var grab = attachment.PendingGrab!;
        attachment.PendingGrab = null;
        grab.Registration.Unregister();
        victim.Attachment = null;
        attachment.Stopped = false;
        attachment.Released = true;
        Record(victim, $"grab {why}");
        return grab;
    }

    private void FailPendingGrab(FakeVictim victim, FakeAttachment attachment, string why, string reason) =>
        DropPendingGrab(victim, attachment, $"failed: {why}").Completion.TrySetException(new GrabException(reason, TracerErrorKind.Gone, Errno.ESRCH));

    private void AbandonGrab(FakeVictim victim, FakeAttachment attachment, PendingGrab grab, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            // Linux lets the victim go once the thread stops; the fake at once, as nothing was done to it yet.
            if (attachment.PendingGrab == grab)
            {
                _ = DropPendingGrab(victim, attachment, "given up");
                CheckWatches();
            }
        }

        grab.Completion.TrySetCanceled(cancellationToken);
    }

    /// <summary>The stop that create and grab return in: the caller knows of it, so it is not reported.</summary>
    private static void HoldWithoutReport(FakeVictim victim, FakeAttachment attachment)
    {
        var thread = victim.Threads.FirstOrDefault();
        attachment.Stopped = true;
        attachment.LastStop = StopEvent.Stopped(StopReason.None, thread?.Tid ?? victim.Pid, thread?.Pc ?? 0);

        // A group-stop that predates the grab was never reported to anyone.
        victim.GroupStopReported = !victim.GroupStopped;
    }

    internal void BeginControl(FakeProcess process)
    {
        lock (_gate)
        {
            var (victim, attachment) = Controlled(process, FakeOperation.BeginControl);
            attachment.ControlEnabled = true;
            Record(victim, "control begun");
        }
    }

    internal ValueTask<StopEvent> WaitForStop(FakeProcess process, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var (victim, attachment) = Controlled(process, FakeOperation.WaitForStop, allowEnded: true);
            if (attachment.Reports.TryDequeue(out var stop))
            {
                return ValueTask.FromResult(stop);
            }

            if (attachment.Lost || victim.Life != VictimLife.Alive)
            {
                throw Gone(victim, "nothing left to wait for");
            }

            if (attachment.Waiter is not null)
            {
                throw new InvalidOperationException($"pid {victim.Pid}: a wait is already pending");
            }

            if (cancellationToken.IsCancellationRequested)
            {
                return ValueTask.FromCanceled<StopEvent>(cancellationToken);
            }

            var waiter = new TaskCompletionSource<StopEvent>(TaskCreationOptions.RunContinuationsAsynchronously);
            attachment.Waiter = waiter;
            attachment.WaiterRegistration = cancellationToken.UnsafeRegister(_ => AbandonWait(attachment, waiter, cancellationToken), null);
            return new ValueTask<StopEvent>(waiter.Task);
        }
    }

    /// <summary>The report a wait would return at once, if one is queued; never blocks.</summary>
    internal StopEvent? TakeReadyStop(FakeProcess process)
    {
        lock (_gate)
        {
            var (victim, attachment) = Controlled(process, FakeOperation.TakeReadyStop, allowEnded: true);
            if (attachment.Waiter is not null)
            {
                throw new InvalidOperationException($"pid {victim.Pid}: a wait is pending");
            }

            return attachment.Reports.TryDequeue(out var stop) ? stop : null;
        }
    }

    private void AbandonWait(FakeAttachment attachment, TaskCompletionSource<StopEvent> waiter, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (attachment.Waiter == waiter)
            {
                attachment.Waiter = null;
            }
        }

        waiter.TrySetCanceled(cancellationToken);
    }

    internal void Resume(FakeProcess process)
    {
        lock (_gate)
        {
            var (victim, attachment) = Controlled(process, FakeOperation.Resume);
            if (victim.Life != VictimLife.Alive)
            {
                throw Gone(victim, "resume of a dead process");
            }

            if (!attachment.Stopped)
            {
                throw new TracerException($"pid {victim.Pid}: resume of a running process", TracerErrorKind.Busy, Errno.EBUSY);
            }

            attachment.Stopped = false;
            attachment.AwaitingExternalResume = false;
            DropStaleStops(attachment);
            Record(victim, "resumed");
            if (attachment.PendingSignal != 0)
            {
                var signal = attachment.PendingSignal;
                attachment.PendingSignal = 0;
                Terminate(victim, ExitStatus.FromSignal(signal, coreDumped: signal is Signals.Segv or Signals.Trap));
            }
            else if (victim.GroupStopped && !victim.GroupStopReported && !victim.WaitsInVfork)
            {
                ReportGroupStop(victim, attachment);
            }
            else
            {
                ReportPendingTrap(victim, attachment);
            }
        }
    }

    /// <summary>Stops the tracer resumed past without reading them are history; exits and losses are not.</summary>
    private static void DropStaleStops(FakeAttachment attachment)
    {
        var keep = attachment.Reports.Where(r => r.Kind != StopKind.Stopped).ToList();
        attachment.Reports.Clear();
        foreach (var report in keep)
        {
            attachment.Reports.Enqueue(report);
        }
    }

    internal void AwaitExternalResume(FakeProcess process)
    {
        lock (_gate)
        {
            var (victim, attachment) = Controlled(process, FakeOperation.AwaitExternalResume);
            if (victim.Life != VictimLife.Alive)
            {
                throw Gone(victim, "await external resume of a dead process");
            }

            Record(victim, "awaiting external resume");
            if (victim.GroupStopped)
            {
                attachment.AwaitingExternalResume = true;
            }
            else
            {
                // Continued before we got round to waiting: report it now instead of never.
                StopFor(victim, attachment, StopEvent.Stopped(StopReason.ResumedByOthers, attachment.LastStop.ThreadId, attachment.LastStop.ProgramCounter));
            }
        }
    }

    internal void RequestStop(FakeProcess process)
    {
        lock (_gate)
        {
            var (victim, attachment) = Controlled(process, FakeOperation.RequestStop, allowEnded: true);
            if (attachment.Lost || victim.Life != VictimLife.Alive || attachment.Reports.Count > 0)
            {
                // Dead, lost, or a report is already waiting to be read: the next wait completes anyway.
                return;
            }

            if (attachment.Stopped)
            {
                // Stopped with nothing to report (a failed resume, a wait for an external resume): teardown
                // still needs the wait to complete, so report the stop again as the one asked for.
                Record(victim, "stop requested while stopped");
                StopFor(victim, attachment, StopEvent.Stopped(StopReason.Interrupted, attachment.LastStop.ThreadId, attachment.LastStop.ProgramCounter));
                return;
            }

            // Not held up by a thread waiting in vfork, as on Linux: there the stop comes only once the child execs or
            // exits, and the owner thread is blocked until then (a known limit, see the Linux README). Modelled, it
            // hangs teardown whenever that child is stopped; the core plants nothing between ForkStarting and VforkDone.
            var thread = victim.Threads[0];
            Record(victim, "stop requested");
            StopFor(victim, attachment, StopEvent.Stopped(StopReason.Interrupted, thread.Tid, thread.Pc));
        }
    }

    /// <summary>The registers the thread's script set last (<see cref="FakeStep.SetRegisters"/>), with its PC as rip.</summary>
    internal X64Registers ReadRegisters(FakeProcess process, int threadId)
    {
        lock (_gate)
        {
            var (victim, _) = Controlled(process, FakeOperation.ReadRegisters);
            var thread = victim.FindThread(threadId) ?? throw Gone(victim, $"no thread {threadId}");
            return thread.Registers with { Rip = thread.Pc };
        }
    }

    /// <summary>The first argument the thread's last <see cref="FakeStep.Call"/> passed (0 when none did).</summary>
    internal ulong ReadFirstArgument(FakeProcess process, int threadId)
    {
        lock (_gate)
        {
            var (victim, _) = Controlled(process, FakeOperation.ReadFirstArgument);
            var thread = victim.FindThread(threadId) ?? throw Gone(victim, $"no thread {threadId}");
            return thread.FirstArgument;
        }
    }

    /// <summary>Every thread with its PC: the fake kernel always knows where a thread is, running or not.</summary>
    internal IReadOnlyList<ThreadSnapshot> ReadThreads(FakeProcess process)
    {
        lock (_gate)
        {
            var victim = Readable(process);
            return [.. victim.Threads.Select(t => new ThreadSnapshot(t.Tid, t.Pc))];
        }
    }

    internal BreakpointPatch PlantBreakpoint(FakeProcess process, ulong address)
    {
        lock (_gate)
        {
            var victim = Writable(process, FakeOperation.PlantBreakpoint);
            if (CounterCovering(victim, address) is { } counter)
            {
                throw new TracerException($"pid {victim.Pid}: 0x{address:x} lies in the jump of the in-victim counter of 0x{counter.Entry:x}; remove the counter first", TracerErrorKind.Busy, Errno.EBUSY);
            }

            if (victim.Memory.ReadByte(address) is not { } original || !victim.Memory.TryWrite(address, [FakeObjectFile.Int3]))
            {
                throw new TracerException($"pid {victim.Pid}: cannot plant a breakpoint at unmapped 0x{address:x}", TracerErrorKind.BadAddress, Errno.EIO);
            }

            victim.Planted.Add(address);
            Record(victim, $"plant 0x{address:x}");
            return new BreakpointPatch(address, original, 1);
        }
    }

    internal void RemoveBreakpoint(FakeProcess process, BreakpointPatch patch)
    {
        lock (_gate)
        {
            var victim = Writable(process, FakeOperation.RemoveBreakpoint);
            if (!victim.Planted.Remove(patch.Address))
            {
                // Planted before an exec: the new image never had it, so nothing is written.
                Record(victim, $"forget 0x{patch.Address:x}");
                return;
            }

            Span<byte> original = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(original, patch.OriginalBytes);
            if (patch.Length is < 1 or > 8 || !victim.Memory.TryWrite(patch.Address, original[..patch.Length]))
            {
                throw new TracerException($"pid {victim.Pid}: cannot restore 0x{patch.Address:x}", TracerErrorKind.BadAddress, Errno.EIO);
            }

            Record(victim, $"remove 0x{patch.Address:x}");
        }
    }

    internal void StepOverBreakpoint(FakeProcess process, int threadId, BreakpointPatch patch)
    {
        lock (_gate)
        {
            var (victim, attachment) = Controlled(process, FakeOperation.StepOverBreakpoint);
            if (!attachment.Stopped || victim.FindThread(attachment.LastStop.ThreadId) is not { } thread)
            {
                throw new InvalidOperationException($"pid {victim.Pid}: step over needs a victim stopped by one of its threads");
            }

            if (thread.Tid != threadId)
            {
                // The core must step the thread whose stop it answers: any other is a bug the fake makes loud.
                throw new InvalidOperationException($"pid {victim.Pid}: step over asked for tid {threadId}, but tid {thread.Tid} reported the stop");
            }

            if (thread.Pc != patch.Address)
            {
                throw new InvalidOperationException($"pid {victim.Pid}: tid {thread.Tid} is at 0x{thread.Pc:x}, not at the breakpoint 0x{patch.Address:x}");
            }

            thread.StepOver = patch;
            Record(victim, $"step over 0x{patch.Address:x} armed for tid {thread.Tid}");
        }
    }

    internal int ReadMemory(FakeProcess process, ulong address, Span<byte> destination)
    {
        lock (_gate)
        {
            var victim = Readable(process);
            var length = destination.Length;
            if (Draw(FakeOperation.ReadMemory, victim.Pid) is { } errno)
            {
                if (errno != Errno.EIO)
                {
                    throw Injected(FakeOperation.ReadMemory, victim.Pid, errno);
                }

                length /= 2;
            }

            return victim.Memory.Read(address, destination[..length]);
        }
    }

    internal void WriteMemory(FakeProcess process, ulong address, ReadOnlySpan<byte> source)
    {
        lock (_gate)
        {
            var victim = Writable(process, FakeOperation.WriteMemory);
            if (!victim.Memory.TryWrite(address, source))
            {
                throw new TracerException($"pid {victim.Pid}: cannot write {source.Length} bytes at 0x{address:x}", TracerErrorKind.BadAddress, Errno.EIO);
            }

            Record(victim, $"write {source.Length} bytes at 0x{address:x}");
        }
    }

    internal FakeRtldAgent? OpenRtldAgent(FakeProcess process)
    {
        lock (_gate)
        {
            var victim = Readable(process);
            Inject(FakeOperation.OpenRtldAgent, victim.Pid);
            return victim.Image.DynamicLinker is { } linker ? new FakeRtldAgent(this, victim, victim.Generation, linker) : null;
        }
    }

    internal RtldEventMessage ReadEventMessage(FakeVictim victim, int generation)
    {
        lock (_gate)
        {
            Inject(FakeOperation.ReadEventMessage, victim.Pid);
            if (victim.Life != VictimLife.Alive)
            {
                throw Gone(victim, "the linker is gone");
            }

            if (victim.Generation != generation)
            {
                throw new TracerException($"pid {victim.Pid}: the agent belongs to an image replaced by exec", TracerErrorKind.BadAddress, Errno.EIO);
            }

            return victim.RtldMessage;
        }
    }

    internal IReadOnlyList<FakeMapping> ReadMappings(FakeVictim victim, FakeOperation operation)
    {
        lock (_gate)
        {
            Inject(operation, victim.Pid);
            if (operation == FakeOperation.SymbolsReset)
            {
                Record(victim, "symbols reset");
            }

            return [.. victim.Mappings];
        }
    }

    internal void Release(FakeProcess process, ReleaseMode mode)
    {
        lock (_gate)
        {
            var victim = process.Victim;
            if (process.Attachment is not { } attachment)
            {
                if (process.ReadOnlyReleased)
                {
                    throw new InvalidOperationException($"pid {victim.Pid}: released twice");
                }

                Inject(FakeOperation.Release, victim.Pid);
                process.ReadOnlyReleased = true;
                Record(victim, "released read-only");
                return;
            }

            if (attachment.Released)
            {
                throw new InvalidOperationException($"pid {victim.Pid}: released twice");
            }

            Inject(FakeOperation.Release, victim.Pid);
            TakeCountersOut(victim);
            LetGo(victim, attachment, mode);
        }
    }

    /// <summary>Closing without release (a crash, a forgotten handle): the last-close flags decide, as on illumos.</summary>
    internal void Close(FakeProcess process)
    {
        lock (_gate)
        {
            if (process.Attachment is { Released: false } attachment)
            {
                // The tracer lives on and drops its hold: like the Linux backend's Dispose, it takes its counters out
                // first (a crash of the tracer, CrashTracer, leaves them in).
                TakeCountersOut(process.Victim);
                CloseWithoutRelease(process.Victim, attachment);
            }
        }
    }

    private void CloseWithoutRelease(FakeVictim victim, FakeAttachment attachment)
    {
        var mode = attachment.AwaitingExternalResume ? ReleaseMode.Hang : attachment.KillOnLastClose ? ReleaseMode.Kill : ReleaseMode.Run;
        Record(victim, $"tracer closed without release");
        LetGo(victim, attachment, mode);
    }

    private void LetGo(FakeVictim victim, FakeAttachment attachment, ReleaseMode mode)
    {
        attachment.Released = true;
        if (attachment.Waiter is { } waiter)
        {
            attachment.Waiter = null;
            attachment.WaiterRegistration.Unregister();
            waiter.TrySetException(Gone(victim, "released while waiting"));
        }

        if (attachment.Lost || victim.Life == VictimLife.Reaped)
        {
            Record(victim, $"released ({mode}) after the end");
            return;
        }

        if (mode == ReleaseMode.Kill)
        {
            Terminate(victim, ExitStatus.FromSignal(Signals.Kill));
        }

        victim.Attachment = null;
        attachment.Stopped = false;
        foreach (var thread in victim.Threads)
        {
            // Forgotten with the tracer: a thread parked on a breakpoint re-executes whatever is at its PC.
            thread.StepOver = null;
            thread.PendingTrap = null;
            thread.ForkAnnounced = false;
        }

        if (mode == ReleaseMode.Hang && victim.Life == VictimLife.Alive)
        {
            victim.GroupStopped = true;
            victim.GroupStopReported = true;
        }

        Record(victim, $"released ({mode})");

        // The tracer was the parent of a created victim; once it lets go, init adopts and reaps.
        victim.AutoReap = true;
        if (victim.Life == VictimLife.Zombie && victim.Parent is null)
        {
            ReapNow(victim);
        }

        CheckWatches();
    }

    private (FakeVictim Victim, FakeAttachment Attachment) Controlled(FakeProcess process, FakeOperation operation, bool allowEnded = false)
    {
        var victim = process.Victim;
        if (process.Attachment is not { } attachment)
        {
            throw new InvalidOperationException($"pid {victim.Pid}: {operation} needs a process grabbed for control");
        }

        if (attachment.Released)
        {
            throw new InvalidOperationException($"pid {victim.Pid}: {operation} after Release");
        }

        Inject(operation, victim.Pid);
        if (!allowEnded && attachment.Lost)
        {
            throw new TracerException($"pid {victim.Pid}: control lost", TracerErrorKind.Gone, Errno.ESRCH);
        }

        if (!allowEnded && victim.Life == VictimLife.Reaped)
        {
            throw Gone(victim, operation.ToString());
        }

        return (victim, attachment);
    }

    private static FakeVictim Readable(FakeProcess process)
    {
        var victim = process.Victim;
        if (process.Attachment is { Released: true } || process.ReadOnlyReleased)
        {
            throw new InvalidOperationException($"pid {victim.Pid}: memory access after Release");
        }

        if (victim.Life != VictimLife.Alive)
        {
            throw Gone(victim, "its memory is gone");
        }

        if (process.Attachment is { Lost: true })
        {
            throw new TracerException($"pid {victim.Pid}: control lost", TracerErrorKind.PermissionDenied, Errno.EPERM);
        }

        return victim;
    }

    private FakeVictim Writable(FakeProcess process, FakeOperation operation)
    {
        var (victim, attachment) = Controlled(process, operation);
        if (victim.Life != VictimLife.Alive)
        {
            throw Gone(victim, "its memory is gone");
        }

        if (RequireStopForWrites && !attachment.Stopped && !victim.GroupStopped)
        {
            throw new TracerException($"pid {victim.Pid}: {operation} while the victim runs", TracerErrorKind.Busy, Errno.EBUSY);
        }

        return victim;
    }

    private static TracerException Gone(FakeVictim victim, string what) =>
        new($"pid {victim.Pid}: {Errno.Describe(Errno.ESRCH)} ({what})", TracerErrorKind.Gone, Errno.ESRCH);

    private void Inject(FakeOperation operation, int pid)
    {
        if (Draw(operation, pid) is { } errno)
        {
            throw Injected(operation, pid, errno);
        }
    }

    private int? Draw(FakeOperation operation, int pid)
    {
        var errno = _faults.Draw(operation);
        if (errno is not null)
        {
            Record(pid, $"fault {operation} {Errno.Name(errno.Value)}");
        }

        return errno;
    }

    private static TracerException Injected(FakeOperation operation, int pid, int errno) => operation switch
    {
        FakeOperation.Create => new ProcessStartException(Errno.Describe(errno), Errno.KindOf(errno), errno),
        FakeOperation.Grab => new GrabException(Errno.Describe(errno), Errno.KindOf(errno), errno),
        _ => new TracerException($"pid {pid}: {operation}: {Errno.Describe(errno)} (injected)", Errno.KindOf(errno), errno),
    };
}
