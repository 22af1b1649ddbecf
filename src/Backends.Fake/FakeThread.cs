using ProcHex.Ports;

namespace ProcHex.Backends.Fake;

/// <summary>A victim thread: its id, program counter and where it is in its script.</summary>
internal sealed class FakeThread
{
    private readonly Stack<Frame> _frames = new();

    public FakeThread(int tid, IReadOnlyList<FakeStep> script, ulong pc)
    {
        Tid = tid;
        Pc = pc;
        Push(script, 1);
    }

    public int Tid { get; }

    public ulong Pc { get; set; }

    /// <summary>What <see cref="FakeStep.SetRegisters"/> set last; rip is always <see cref="Pc"/>.</summary>
    public X64Registers Registers { get; set; }

    /// <summary>rdi: what the last call that passed an argument passed.</summary>
    public ulong FirstArgument { get; set; }

    /// <summary>Armed by StepOverBreakpoint: the next execution at this address runs the original instruction.</summary>
    public BreakpointPatch? StepOver { get; set; }

    /// <summary>Trapped on an int3 together with the thread whose stop was reported; reported after the next resume.</summary>
    public ulong? PendingTrap { get; set; }

    /// <summary>A traced fork has reported ForkStarting; the next run of the step creates the child.</summary>
    public bool ForkAnnounced { get; set; }

    /// <summary>The vfork child this thread waits for; null once it exec'd or exited.</summary>
    public FakeVictim? VforkChild { get; set; }

    /// <summary>The vfork child let go of the memory; the next run completes the vfork.</summary>
    public bool VforkDonePending { get; set; }

    /// <summary>The step this thread runs next, or null when its script is over.</summary>
    public FakeStep? Current
    {
        get
        {
            while (_frames.TryPeek(out var frame))
            {
                if (frame.Index < frame.Steps.Count)
                {
                    return frame.Steps[frame.Index];
                }

                if (frame.Remaining != 1 && frame.Steps.Count > 0)
                {
                    frame.Index = 0;
                    frame.Remaining = frame.Remaining < 0 ? -1 : frame.Remaining - 1;
                    continue;
                }

                _frames.Pop();
            }

            return null;
        }
    }

    public void Advance()
    {
        if (Current is not null)
        {
            _frames.Peek().Index++;
        }
    }

    /// <summary>Runs <paramref name="steps"/> <paramref name="count"/> times (negative: forever) before the rest.</summary>
    public void Push(IReadOnlyList<FakeStep> steps, int count) => _frames.Push(new Frame(steps, count));

    /// <inheritdoc/>
    public override string ToString()
    {
        var next = VforkChild is not null ? $"waits for vfork child {VforkChild.Pid}" : $"next {Current?.ToString() ?? "end"}";
        return $"tid {Tid} pc 0x{Pc:x} {next}";
    }

    private sealed class Frame(IReadOnlyList<FakeStep> steps, int remaining)
    {
        public IReadOnlyList<FakeStep> Steps { get; } = steps;

        public int Index { get; set; }

        public int Remaining { get; set; } = remaining;
    }
}
