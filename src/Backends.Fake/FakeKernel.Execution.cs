using System.Buffers.Binary;
using System.Globalization;
using ProcHex.Ports;

namespace ProcHex.Backends.Fake;

/// <summary>How victims run: thread selection and the meaning of each script step.</summary>
public sealed partial class FakeKernel
{
    private const string LostToSetId = "process exec'd set-id or unobservable program";

    /// <summary>True when some thread of some victim can run a step.</summary>
    public bool CanProgress
    {
        get { lock (_gate) { return RunnableThreads().Count > 0; } }
    }

    /// <summary>Runs one step of the next runnable thread, round-robin. False when nothing can run.</summary>
    public bool Step()
    {
        lock (_gate)
        {
            var runnable = RunnableThreads();
            if (runnable.Count == 0)
            {
                return false;
            }

            var (victim, thread) = runnable[(int)(unchecked((uint)_turn++) % (uint)runnable.Count)];
            RunStepAndCheck(victim, thread);
            return true;
        }
    }

    /// <summary>Runs one step of a runnable thread chosen by <paramref name="random"/>. False when nothing can run.</summary>
    public bool Step(Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        lock (_gate)
        {
            var runnable = RunnableThreads();
            if (runnable.Count == 0)
            {
                return false;
            }

            var (victim, thread) = runnable[random.Next(runnable.Count)];
            RunStepAndCheck(victim, thread);
            return true;
        }
    }

    /// <summary>Steps until nothing can run or <paramref name="maxSteps"/> ran; returns the steps taken.</summary>
    public int RunUntilQuiet(int maxSteps = 10_000)
    {
        var steps = 0;
        while (steps < maxSteps && Step())
        {
            steps++;
        }

        return steps;
    }

    private List<(FakeVictim Victim, FakeThread Thread)> RunnableThreads()
    {
        var runnable = new List<(FakeVictim, FakeThread)>();
        foreach (var victim in _victims.Values)
        {
            foreach (var thread in victim.Threads)
            {
                if (Runnable(victim, thread))
                {
                    runnable.Add((victim, thread));
                }
            }
        }

        return runnable;
    }

    private static bool Runnable(FakeVictim victim, FakeThread thread, bool ignoreTraceStop = false) =>
        victim.Life == VictimLife.Alive
        && !victim.GroupStopped
        && (ignoreTraceStop || victim.Attachment is not { Stopped: true })
        && thread.VforkChild is null
        && !(thread.Current is FakeStep.WaitChildren && victim.Children.Exists(c => c.Life == VictimLife.Alive));

    private void RunStepAndCheck(FakeVictim victim, FakeThread thread)
    {
        _stepCount++;
        RunStep(victim, thread);
        CheckWatches();
    }

    private void RunStep(FakeVictim victim, FakeThread thread)
    {
        if (thread.VforkDonePending)
        {
            thread.VforkDonePending = false;
            thread.Advance();
            if (victim.Attachment is { ControlEnabled: true } attachment)
            {
                StopFor(victim, attachment, StopEvent.Stopped(StopReason.VforkDone, thread.Tid, thread.Pc));
            }

            return;
        }

        switch (thread.Current)
        {
            case null when thread.Tid == victim.Pid:
                Record(victim, "returned from main");
                Terminate(victim, ExitStatus.FromCode(0));
                break;
            case null:
                EndThread(victim, thread);
                break;
            case FakeStep.Execute execute:
                ExecuteInstruction(victim, thread, execute.Address);
                break;
            case FakeStep.Call call:
                if (TryResolveSymbol(victim, call.ObjectName, call.Symbol, out var address))
                {
                    thread.FirstArgument = call.FirstArgument ?? thread.FirstArgument;
                    ExecuteInstruction(victim, thread, address);
                }
                else
                {
                    Record(victim, $"call to unresolved symbol {call.Symbol}");
                    Terminate(victim, ExitStatus.FromSignal(Signals.Segv, coreDumped: true));
                }

                break;
            case FakeStep.Loop loop:
                thread.Advance();
                if (loop.Count != 0 && loop.Body.Count > 0)
                {
                    thread.Push(loop.Body, loop.Count);
                }

                break;
            case FakeStep.Fork fork:
                Fork(victim, thread, fork.Child, sharesMemory: false);
                break;
            case FakeStep.Vfork vfork:
                Fork(victim, thread, vfork.Child, sharesMemory: true);
                break;
            case FakeStep.Exec exec:
                Exec(victim, exec.Image, exec.Arguments, exec.Image.SetId);
                break;
            case FakeStep.ExecSetId exec:
                Exec(victim, exec.Image, exec.Arguments, setId: true);
                break;
            case FakeStep.DlOpen open:
                thread.Advance();
                thread.Push(
                    [
                        new FakeStep.RtldEvent(RtldEventKind.DlActivity, RtldState.Adding),
                        new FakeStep.MapLibrary(open.Library),
                        new FakeStep.RtldEvent(RtldEventKind.DlActivity, RtldState.Consistent),
                    ],
                    1);
                break;
            case FakeStep.DlClose close:
                thread.Advance();
                thread.Push(
                    [
                        new FakeStep.RtldEvent(RtldEventKind.DlActivity, RtldState.Deleting),
                        new FakeStep.UnmapLibrary(close.Library),
                        new FakeStep.RtldEvent(RtldEventKind.DlActivity, RtldState.Consistent),
                    ],
                    1);
                break;
            case FakeStep.SpawnThread spawn:
                thread.Advance();
                SpawnThread(victim, thread, spawn);
                break;
            case FakeStep.ThreadExit:
                EndThread(victim, thread);
                break;
            case FakeStep.SetRegisters set:
                thread.Advance();
                thread.Registers = set.Registers;
                break;
            case FakeStep.Store store:
                thread.Advance();
                victim.Memory.Load(store.Address, [.. store.Bytes]);
                break;
            case FakeStep.Exit exit:
                Terminate(victim, ExitStatus.FromCode(exit.Code));
                break;
            case FakeStep.Describe describe:
                thread.Advance();
                victim.Pipe(describe.Descriptor)?.Append($"argv0={(victim.Arguments.Count > 0 ? victim.Arguments[0] : string.Empty)} cwd={victim.WorkingDirectory}\n");
                break;
            case FakeStep.Signal signal:
                thread.Advance();
                RaiseFatal(victim, thread, signal.Number);
                break;
            case FakeStep.StopByOthers:
                thread.Advance();
                GroupStop(victim);
                break;
            case FakeStep.WaitChildren:
                thread.Advance();
                foreach (var child in victim.Children.Where(c => c.Life == VictimLife.Zombie).ToList())
                {
                    ReapNow(child);
                }

                break;
            case FakeStep.RtldEvent rtld:
                victim.RtldMessage = new RtldEventMessage(rtld.Kind, rtld.State);
                if (victim.Image.DynamicLinker is { } linker)
                {
                    ExecuteInstruction(victim, thread, linker.EventAddress(rtld.Kind));
                }
                else
                {
                    thread.Advance();
                }

                break;
            case FakeStep.MapNeeded:
                thread.Advance();
                foreach (var library in victim.Image.Needed)
                {
                    MapLibrary(victim, library);
                }

                break;
            case FakeStep.MapLibrary map:
                thread.Advance();
                MapLibrary(victim, map.Library);
                break;
            case FakeStep.UnmapLibrary unmap:
                thread.Advance();
                UnmapLibrary(victim, unmap.Library);
                break;
            case FakeStep.LoseControl:
                thread.Advance();
                LoseControl(victim, LostToSetId);
                break;
            default:
                throw new InvalidOperationException($"unknown step {thread.Current}");
        }
    }

    /// <summary>int3 semantics: a trap stops a traced victim and kills an untraced one; a step-over runs the original once.</summary>
    private void ExecuteInstruction(FakeVictim victim, FakeThread thread, ulong address)
    {
        thread.Pc = address;
        if (thread.StepOver is { } patch)
        {
            thread.StepOver = null;
            if (patch.Address == address)
            {
                Record(victim, $"tid {thread.Tid} stepped over 0x{address:x}");
                Complete(victim, thread, address);
                return;
            }
        }

        switch (victim.Memory.ReadByte(address))
        {
            case null:
                Record(victim, $"tid {thread.Tid} executed unmapped 0x{address:x}");
                Terminate(victim, ExitStatus.FromSignal(Signals.Segv, coreDumped: true));
                break;
            case FakeObjectFile.Int3 when victim.Attachment is { } attachment:
                StopFor(victim, attachment, StopEvent.Stopped(StopReason.Breakpoint, thread.Tid, address));
                if (SimultaneousTraps)
                {
                    TrapOtherThreads(victim, thread);
                }

                break;
            case FakeObjectFile.Int3:
                Record(victim, $"tid {thread.Tid} hit int3 at 0x{address:x} untraced");
                Terminate(victim, ExitStatus.FromSignal(Signals.Trap, coreDumped: true));
                break;
            default:
                Complete(victim, thread, address);
                break;
        }
    }

    private void TrapOtherThreads(FakeVictim victim, FakeThread reporter)
    {
        foreach (var thread in victim.Threads)
        {
            if (thread != reporter
                && thread.PendingTrap is null
                && Runnable(victim, thread, ignoreTraceStop: true)
                && NextInstruction(victim, thread) is { } next
                && thread.StepOver?.Address != next
                && victim.Memory.ReadByte(next) == FakeObjectFile.Int3)
            {
                thread.Pc = next;
                thread.PendingTrap = next;
                Record(victim, $"tid {thread.Tid} trapped at 0x{next:x} too");
            }
        }
    }

    /// <summary>Reports one trap held back by <see cref="TrapOtherThreads"/>; true when there was one.</summary>
    private bool ReportPendingTrap(FakeVictim victim, FakeAttachment attachment)
    {
        if (victim.Threads.Find(t => t.PendingTrap is not null) is not { } thread)
        {
            return false;
        }

        var address = thread.PendingTrap!.Value;
        thread.PendingTrap = null;
        StopFor(victim, attachment, StopEvent.Stopped(StopReason.Breakpoint, thread.Tid, address));
        return true;
    }

    private static ulong? NextInstruction(FakeVictim victim, FakeThread thread) => thread.Current switch
    {
        FakeStep.Execute execute => execute.Address,
        FakeStep.Call call when TryResolveSymbol(victim, call.ObjectName, call.Symbol, out var address) => address,
        FakeStep.RtldEvent rtld when victim.Image.DynamicLinker is { } linker => linker.EventAddress(rtld.Kind),
        _ => null,
    };

    private void Complete(FakeVictim victim, FakeThread thread, ulong address)
    {
        CountCall(victim, address);
        if (victim.MappingAt(address) is { } mapping
            && mapping.File.Counters.TryGetValue(address - mapping.Bias, out var counter)
            && TryResolveSymbol(victim, null, counter, out var counterAddress))
        {
            Span<byte> bytes = stackalloc byte[8];
            if (victim.Memory.Read(counterAddress, bytes) == bytes.Length)
            {
                BinaryPrimitives.WriteInt64LittleEndian(bytes, BinaryPrimitives.ReadInt64LittleEndian(bytes) + 1);
                victim.Memory.TryWrite(counterAddress, bytes);
            }
        }

        thread.Advance();
    }

    private void Fork(FakeVictim parent, FakeThread thread, IReadOnlyList<FakeStep> childScript, bool sharesMemory)
    {
        // illumos style: the tracer hears of the fork before the child exists, so it can pull its breakpoints first.
        if (parent.Attachment is { ControlEnabled: true } attachment && !thread.ForkAnnounced)
        {
            thread.ForkAnnounced = true;
            StopFor(parent, attachment, StopEvent.Stopped(StopReason.ForkStarting, thread.Tid, thread.Pc));
            return;
        }

        thread.ForkAnnounced = false;
        var child = new FakeVictim(AllocatePid(), parent.Image, parent.Arguments, sharesMemory ? parent.Memory : parent.Memory.Clone())
        {
            Parent = parent,
            Generation = parent.Generation,
            NextLibraryBase = parent.NextLibraryBase,
            RtldMessage = parent.RtldMessage,
        };
        child.Mappings.AddRange(parent.Mappings);
        if (!sharesMemory)
        {
            RestoreCounterEntries(parent, child);
        }

        child.Threads.Add(new FakeThread(child.Pid, childScript, thread.Pc));
        parent.Children.Add(child);
        _victims.Add(child.Pid, child);
        Record(parent, $"{(sharesMemory ? "vfork" : "fork")} child {child.Pid}");
        if (sharesMemory)
        {
            thread.VforkChild = child;
            child.VforkParentThread = thread;
            return;
        }

        thread.Advance();
        if (parent.Attachment is { ControlEnabled: true } traced)
        {
            StopFor(parent, traced, StopEvent.Stopped(StopReason.ForkDone, thread.Tid, thread.Pc));
        }
    }

    /// <summary>
    /// A vfork child stopped borrowing its parent's memory: the parent thread completes its vfork. Now it can stop,
    /// so what waited for that (a grab, the report of a group-stop) happens before it runs on.
    /// </summary>
    private void ReleaseVforkParent(FakeVictim child)
    {
        if (child.VforkParentThread is not { } parentThread)
        {
            return;
        }

        child.VforkParentThread = null;
        parentThread.VforkChild = null;
        parentThread.VforkDonePending = true;
        if (child.Parent is not { Life: VictimLife.Alive, Attachment: { } attachment } parent || parent.WaitsInVfork)
        {
            return;
        }

        if (attachment.PendingGrab is not null)
        {
            CompleteGrab(parent, attachment);
        }
        else if (!attachment.Stopped && parent.GroupStopped && !parent.GroupStopReported)
        {
            ReportGroupStop(parent, attachment);
        }
    }

    private void Exec(FakeVictim victim, FakeImage image, IReadOnlyList<string> arguments, bool setId)
    {
        ReleaseVforkParent(victim);
        victim.Image = image;
        victim.Arguments = arguments;
        victim.Generation++;
        victim.RtldMessage = default;
        ForgetCounters(victim);
        victim.Memory = new FakeMemory();
        victim.Planted.Clear();
        victim.Mappings.Clear();
        victim.NextLibraryBase = FakeVictim.FirstLibraryBase;
        victim.Threads.Clear();
        LoadImage(victim);
        Record(victim, $"exec {Format(arguments)}{(setId ? " (set-id)" : string.Empty)}");
        if (victim.Attachment is not { } attachment)
        {
            return;
        }

        if (setId)
        {
            LoseControl(victim, LostToSetId);
        }
        else if (attachment.ControlEnabled)
        {
            StopFor(victim, attachment, StopEvent.Stopped(StopReason.ExecDone, victim.Pid, victim.Threads[0].Pc));
        }
    }

    private FakeVictim NewVictim(FakeImage image, IReadOnlyList<string> arguments)
    {
        var victim = new FakeVictim(AllocatePid(), image, arguments, new FakeMemory());
        LoadImage(victim);
        _victims.Add(victim.Pid, victim);
        return victim;
    }

    /// <summary>Maps the executable and its linker and gives the victim one thread at the first instruction.</summary>
    private static void LoadImage(FakeVictim victim)
    {
        var image = victim.Image;
        Place(victim, image.File, 0, null);
        List<FakeStep> script = [];
        var entry = image.Entry;
        if (image.DynamicLinker is { } linker)
        {
            Place(victim, linker.File, linker.BaseAddress, null);
            entry = linker.Entry;
            script.Add(new FakeStep.MapNeeded());
            script.Add(new FakeStep.RtldEvent(RtldEventKind.Preinit, RtldState.Consistent));
            script.Add(new FakeStep.RtldEvent(RtldEventKind.Postinit, RtldState.Consistent));
        }

        script.Add(new FakeStep.Execute(image.Entry));
        if (image.Symbols.ContainsKey("main"))
        {
            script.Add(new FakeStep.Call("main", "a.out"));
        }

        script.AddRange(image.ProgramFor(victim.Arguments));
        victim.Threads.Add(new FakeThread(victim.Pid, script, entry));
    }

    private static void Place(FakeVictim victim, FakeObjectFile file, ulong bias, FakeLibrary? library)
    {
        victim.Memory.Load(file.TextStart + bias, file.Text);
        victim.Memory.Map(file.DataStart + bias, Math.Max(file.DataSize, FakeMemory.PageSize));
        victim.Mappings.Add(new FakeMapping(file, bias, library));
    }

    private void MapLibrary(FakeVictim victim, FakeLibrary library)
    {
        if (victim.Mappings.Exists(m => m.Library == library))
        {
            return;
        }

        var bias = victim.NextLibraryBase;
        victim.NextLibraryBase += FakeObjectFile.AlignUp(library.File.End) + 0x10_0000;
        Place(victim, library.File, bias, library);
        Record(victim, string.Create(CultureInfo.InvariantCulture, $"mapped {library.Path} at 0x{bias:x}"));
    }

    private void UnmapLibrary(FakeVictim victim, FakeLibrary library)
    {
        if (victim.Mappings.Find(m => m.Library == library) is not { } mapping)
        {
            return;
        }

        victim.Mappings.Remove(mapping);
        victim.Memory.Unmap(mapping.TextStart, mapping.File.End - mapping.File.TextStart);
        Record(victim, $"unmapped {library.Path}");
    }

    private void SpawnThread(FakeVictim victim, FakeThread creator, FakeStep.SpawnThread spawn)
    {
        var tid = spawn.Tid ?? AllocatePid();
        if (victim.FindThread(tid) is not null || (tid != victim.Pid && _victims.ContainsKey(tid)))
        {
            throw new InvalidOperationException($"pid {victim.Pid}: tid {tid} is already in use");
        }

        victim.Threads.Add(new FakeThread(tid, spawn.Script, creator.Pc));
        Record(victim, $"thread {tid} started");
    }

    private void EndThread(FakeVictim victim, FakeThread thread)
    {
        victim.Threads.Remove(thread);
        Record(victim, $"thread {thread.Tid} exited");
        if (victim.Threads.Count == 0)
        {
            Terminate(victim, ExitStatus.FromCode(0));
        }
    }

    /// <summary>A fatal signal: a traced victim stops for it first (Resume delivers it), an untraced one dies.</summary>
    private void RaiseFatal(FakeVictim victim, FakeThread? thread, int signal)
    {
        if (victim.Attachment is { } attachment)
        {
            attachment.PendingSignal = signal;
            StopFor(victim, attachment, StopEvent.Stopped(StopReason.Signal, thread?.Tid ?? victim.Pid, thread?.Pc ?? 0));
            return;
        }

        Terminate(victim, ExitStatus.FromSignal(signal, coreDumped: signal is Signals.Segv or Signals.Trap));
    }

    private void GroupStop(FakeVictim victim)
    {
        if (victim.GroupStopped || victim.Life != VictimLife.Alive)
        {
            return;
        }

        victim.GroupStopped = true;
        victim.GroupStopReported = false;
        Record(victim, "stopped by others");

        // Reported once every thread has stopped (S20): a thread waiting in vfork joins when the vfork ends.
        if (victim.Attachment is { Stopped: false } attachment && !victim.WaitsInVfork)
        {
            ReportGroupStop(victim, attachment);
        }
    }

    private void ReportGroupStop(FakeVictim victim, FakeAttachment attachment)
    {
        victim.GroupStopReported = true;
        var thread = victim.Threads.FirstOrDefault();
        StopFor(victim, attachment, StopEvent.Stopped(StopReason.StoppedByOthers, thread?.Tid ?? victim.Pid, thread?.Pc ?? 0));
    }

    private void ContinueGroup(FakeVictim victim)
    {
        if (!victim.GroupStopped)
        {
            return;
        }

        victim.GroupStopped = false;
        Record(victim, "continued by others");
        if (victim.Attachment is { AwaitingExternalResume: true } attachment)
        {
            attachment.AwaitingExternalResume = false;
            StopFor(victim, attachment, StopEvent.Stopped(StopReason.ResumedByOthers, attachment.LastStop.ThreadId, attachment.LastStop.ProgramCounter));
        }
    }

    /// <summary>Holds the victim for its tracer and hands the stop to the waiter, or queues it.</summary>
    private void StopFor(FakeVictim victim, FakeAttachment attachment, StopEvent stop)
    {
        attachment.Stopped = true;
        attachment.LastStop = stop;
        Record(victim, $"stop {Format(stop)}");
        Report(attachment, stop);
    }

    private static void Report(FakeAttachment attachment, StopEvent stop)
    {
        if (attachment.Waiter is { } waiter)
        {
            attachment.Waiter = null;
            attachment.WaiterRegistration.Unregister();
            waiter.TrySetResult(stop);
        }
        else
        {
            attachment.Reports.Enqueue(stop);
        }
    }

    private void LoseControl(FakeVictim victim, string message)
    {
        if (victim.Attachment is not { } attachment)
        {
            return;
        }

        victim.Attachment = null;
        victim.AutoReap = true;
        attachment.Stopped = false;
        attachment.Lost = true;
        Record(victim, $"control lost: {message}");
        Report(attachment, StopEvent.Lost(victim.Pid, message));
    }

    private void Terminate(FakeVictim victim, ExitStatus status)
    {
        if (victim.Life != VictimLife.Alive)
        {
            return;
        }

        if (victim.Attachment is { PendingGrab: not null } seizing)
        {
            FailPendingGrab(victim, seizing, "it died", "no such process (it exited while being grabbed)");
        }

        victim.Life = VictimLife.Zombie;
        victim.Exit = status;
        ForgetCounters(victim);
        victim.ClosePipes();
        victim.GroupStopped = false;
        victim.Threads.Clear();
        Record(victim, status.ToString());
        ReleaseVforkParent(victim);
        foreach (var child in victim.Children.ToList())
        {
            // Orphans go to init, which reaps them.
            child.Parent = null;
            child.AutoReap = true;
            victim.Children.Remove(child);
            if (child.Life == VictimLife.Zombie)
            {
                ReapNow(child);
            }
        }

        if (victim.Attachment is { } attachment)
        {
            attachment.Stopped = false;
            Report(attachment, StopEvent.Exited(victim.Pid, status));
        }

        if (victim.AutoReap && victim.Parent is null)
        {
            ReapNow(victim);
        }
    }

    private void ReapNow(FakeVictim victim)
    {
        victim.Life = VictimLife.Reaped;
        _victims.Remove(victim.Pid);
        if (victim.Exit is { } exit)
        {
            _exits[victim.Pid] = exit;
        }

        victim.Parent?.Children.Remove(victim);
        Record(victim, "reaped");
    }

    private int AllocatePid()
    {
        while (_victims.ContainsKey(_nextPid) || _nextPid == SelfPid)
        {
            _nextPid++;
        }

        return _nextPid++;
    }

    private static bool TryResolveSymbol(FakeVictim victim, string? objectName, string symbol, out ulong address)
    {
        foreach (var mapping in victim.Mappings)
        {
            if (FakeSymbolTable.Matches(mapping.Path, objectName, mapping == victim.Mappings[0])
                && mapping.File.Symbols.TryGetValue(symbol, out var value))
            {
                address = value + mapping.Bias;
                return true;
            }
        }

        address = 0;
        return false;
    }
}
