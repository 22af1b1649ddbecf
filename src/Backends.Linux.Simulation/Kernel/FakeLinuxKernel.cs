using Sys = ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux.Simulation.Kernel;

/// <summary>
/// A deterministic fake of the Linux kernel's ptrace, signal and wait behaviour, with syscall-shaped members
/// (Linux request numbers, options, wait statuses and errno values, as in Interop) so the Linux adapter can be
/// bound to it. One tracer (the adapter's owner thread) traces; an <see cref="Outsider"/> may signal victims.
/// <para>Nothing happens on its own: <see cref="Step"/> lets one runnable actor (a task's turn, or the outsider's
/// next action) act, chosen by a seeded Random; a blocking <see cref="WaitPid"/> steps until it has a report.
/// The same seed and calls give the same run. KERNEL-MODEL.md lists what is modelled and on what it rests.</para>
/// </summary>
internal sealed partial class FakeLinuxKernel
{
    /// <summary>The tracer's pid (si_pid of its signals); it is not a simulated process.</summary>
    public const int TracerPid = 1;

    /// <summary>The real parent of every spawned process (init), which reaps it at once.</summary>
    public const int InitPid = 1;


    private readonly Random _random;
    private readonly Dictionary<int, FakeTask> _tasks = [];
    private readonly Dictionary<int, FakeThreadGroup> _groups = [];

    /// <summary>The tracer's ptraced list, in attach order (the kernel adds at the head; wait scans newest first).</summary>
    private readonly List<FakeTask> _tracees = [];

    private int _nextPid;

    /// <param name="seed">Decides every choice of the scheduler.</param>
    /// <param name="firstPid">The first pid handed out (the simulation starts above any real pid).</param>
    public FakeLinuxKernel(int seed, int firstPid = 100)
    {
        _random = new Random(seed);
        _nextPid = firstPid;
    }

    public Outsider Outsider { get; } = new();

    /// <summary>How many actors have acted so far.</summary>
    public long Steps { get; private set; }

    /// <summary>The budget of steps one blocking wait may take before it is declared a hang.</summary>
    public int MaxStepsPerWait { get; set; } = 100_000;

    /// <summary>One line per step and per request, for a failing test to print.</summary>
    public List<string> Log { get; } = [];

    /// <summary>Starts <paramref name="image"/> as a new untraced process (its real parent is init); returns its pid.</summary>
    public int Spawn(FakeImage image)
    {
        var group = NewGroup(image, image.Load(), parent: InitPid);
        NewTask(group, image.Entry);
        return group.Pid;
    }

    /// <summary>Lets one runnable actor act. False when nothing can run: the world is still until someone calls in.</summary>
    public bool Step()
    {
        var runnable = _tasks.Values.Where(IsRunnable).OrderBy(t => t.Tid).ToList();
        var choices = runnable.Count + (Outsider.HasWork ? 1 : 0);
        if (choices == 0)
        {
            return false;
        }

        Steps++;
        var pick = _random.Next(choices);
        if (pick == runnable.Count)
        {
            Trace($"outsider: {Outsider.ActNext()}");
        }
        else
        {
            RunTurn(runnable[pick]);
        }

        return true;
    }

    /// <summary>Steps until <paramref name="condition"/> holds; false if the world stops or the budget runs out first.</summary>
    public bool RunUntil(Func<bool> condition, int maxSteps = 100_000)
    {
        for (var i = 0; i < maxSteps && !condition(); i++)
        {
            if (!Step())
            {
                break;
            }
        }

        return condition();
    }

    /// <summary>Runs <paramref name="steps"/> steps, or fewer if the world stops.</summary>
    public void Run(int steps)
    {
        for (var i = 0; i < steps && Step(); i++)
        {
        }
    }

    /// <summary>
    /// The tracer dies (exit_ptrace): tracees with EXITKILL get SIGKILL; every tracee is detached without a
    /// signal of the tracer's choosing, so one in signal-delivery-stop still gets its signal.
    /// </summary>
    public void CrashTracer()
    {
        Trace("tracer crashes");
        foreach (var t in _tracees.ToList())
        {
            if ((t.Options & Sys.PTRACE_O_EXITKILL) != 0)
            {
                SendSignal(t.Group.Leader ?? t, new SigInfo(Sys.SIGKILL, Abi.SI_USER, TracerPid), shared: true);
            }

            var stop = t.Stop;
            Unlink(t, stop is { Kind: StopKind.SignalDelivery } ? stop.ExitCode : 0);
        }
    }

    private static bool IsRunnable(FakeTask t) =>
        t.State == TaskState.Running || (t.State == TaskState.Blocked && (t.WaitCondition?.Invoke() ?? true));

    private FakeThreadGroup NewGroup(FakeImage image, FakeMemory memory, int parent)
    {
        var group = new FakeThreadGroup(_nextPid, image, memory) { Parent = parent };
        _groups[group.Pid] = group;
        return group;
    }

    private FakeTask NewTask(FakeThreadGroup group, ulong rip)
    {
        var task = new FakeTask(_nextPid++, group, rip);
        group.Tasks.Add(task);
        _tasks[task.Tid] = task;
        return task;
    }

    private FakeTask? Find(int tid) => _tasks.GetValueOrDefault(tid);

    private void Trace(string line) => Log.Add($"{Steps,6} {line}");
}
