using Sys = ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux.Simulation.Kernel;

/// <summary>Running a task's program: fetch the byte at rip, trap on int3, else perform the step there.</summary>
internal sealed partial class FakeLinuxKernel
{
    private void ExecuteStep(FakeTask t)
    {
        var group = t.Group;
        if (!group.Memory.TryRead(t.Rip, out var opcode) || (opcode != FakeImage.Int3 && group.Image.StepAt(t.Rip) is null))
        {
            t.Pending.Enqueue(new SigInfo(Sys.SIGSEGV, Abi.SEGV_MAPERR, 0));
            return;
        }

        if (opcode == FakeImage.Int3)
        {
            // The trap leaves rip after the int3; the tracer rewinds it to re-run the step it covered.
            t.Rip++;
            t.Pending.Enqueue(new SigInfo(Sys.SIGTRAP, Sys.SI_KERNEL, 0));
            return;
        }

        UserStepObserver?.Invoke(t);
        Perform(t, group.Image.StepAt(t.Rip)!);
        if (t.SingleStepping && t.IsAlive)
        {
            t.Pending.Enqueue(new SigInfo(Sys.SIGTRAP, Abi.TRAP_TRACE, 0));
        }
    }

    private void Perform(FakeTask t, ProgramStep step)
    {
        switch (step)
        {
            case Compute c:
                t.Progress++;
                Tick(t, c.Ticks);
                break;
            case Sleep s:
                Tick(t, s.Ticks);
                break;
            case Jump j:
                t.Rip = FakeImage.StepInSameFunction(t.Rip, j.Index);
                break;
            case PushFrame:
                {
                    var regs = t.Registers;
                    regs.rsp -= 8;
                    var value = BitConverter.GetBytes(regs.rbp);
                    for (var i = 0; i < value.Length; i++)
                    {
                        t.Group.Memory.Map(regs.rsp + (ulong)i, value[i]);
                    }

                    t.Registers = regs;
                    t.Rip++;
                    break;
                }
            case SpawnThread s:
                t.Rip++;
                Clone(t, s.Function);
                break;
            case Fork f:
                t.Rip++;
                ForkProcess(t, f.Function, f.Vfork);
                break;
            case Exec e:
                BeginExec(t, e.Image);
                break;
            case ExitThread e:
                ExitTask(t, WaitStatus.Exited(e.Code));
                break;
            case ExitGroup e:
                StartGroupExit(t.Group, WaitStatus.Exited(e.Code));
                ExitTask(t, WaitStatus.Exited(e.Code));
                break;
            case RaiseSignal r:
                t.Rip++;
                SendSignal(t, new SigInfo(r.Signal, Abi.SI_TKILL, t.Group.Pid), shared: false);
                break;
            default:
                throw new InvalidOperationException($"unknown step {step}");
        }
    }

    private static void Tick(FakeTask t, int ticks)
    {
        if (++t.Ticks >= ticks)
        {
            t.Ticks = 0;
            t.Rip++;
        }
    }

    /// <summary>
    /// clone(CLONE_THREAD): with TRACECLONE the new thread is seized too and owes a first PTRACE_EVENT_STOP
    /// (ptrace_init_task); it joins a group stop under way; the parent then stops at PTRACE_EVENT_CLONE. The new
    /// thread is runnable at once, so which of the two reports comes first is the scheduler's choice.
    /// </summary>
    private void Clone(FakeTask parent, string function)
    {
        var child = NewTask(parent.Group, parent.Group.Image.AddressOf(function));
        if (parent.Traced && (parent.Options & Sys.PTRACE_O_TRACECLONE) != 0)
        {
            Link(child, parent.Options);
            child.SetJobctl(JobControl.TrapStop);
        }

        JoinGroupStop(child, parent);
        Trace($"{parent.Tid} clones {child.Tid}");
        EnterEventStop(parent, Sys.PTRACE_EVENT_CLONE, Sys.PTRACE_O_TRACECLONE, (ulong)child.Tid);
    }

    /// <summary>
    /// fork or vfork: a new process (auto-attached with TRACEFORK/TRACEVFORK) and the parent's event stop. A
    /// vfork parent then waits (state D, not taking part in any group stop) until the child execs or exits, and
    /// reports PTRACE_EVENT_VFORK_DONE.
    /// </summary>
    private void ForkProcess(FakeTask parent, string function, bool vfork)
    {
        var memory = vfork ? parent.Group.Memory : parent.Group.Memory.Copy();
        var group = NewGroup(parent.Group.Image, memory, parent: parent.Group.Pid);
        group.BorrowsMemory = vfork;
        var child = NewTask(group, group.Image.AddressOf(function));
        var option = vfork ? Sys.PTRACE_O_TRACEVFORK : Sys.PTRACE_O_TRACEFORK;
        if (parent.Traced && (parent.Options & option) != 0)
        {
            Link(child, parent.Options);
            child.SetJobctl(JobControl.TrapStop);
        }

        Trace($"{parent.Tid} {(vfork ? "vforks" : "forks")} {child.Tid}");
        var ptraceEvent = vfork ? Sys.PTRACE_EVENT_VFORK : Sys.PTRACE_EVENT_FORK;
        EnterEventStop(parent, ptraceEvent, option, (ulong)child.Tid, vfork ? () => WaitForVforkDone(parent, group) : null);
    }

    private void WaitForVforkDone(FakeTask parent, FakeThreadGroup child)
    {
        parent.State = TaskState.Blocked;
        parent.WaitCondition = () => !child.BorrowsMemory;
        parent.WhenUnblocked = () => EnterEventStop(parent, Sys.PTRACE_EVENT_VFORK_DONE, Sys.PTRACE_O_TRACEVFORKDONE, (ulong)child.Pid);
    }
}
