using System.Globalization;
using System.Text;
using ProcHex.Ports;

namespace ProcHex.Backends.Fake;

/// <summary>
/// A scripted, deterministic operating system for tests. Victims advance only when the driver calls
/// <see cref="Step()"/> (or <see cref="DeterministicScheduler"/> does): one script step of one runnable thread.
/// </summary>
/// <remarks>
/// Threading: one lock guards every victim, the event log and the fault plan, so a background thread may step
/// the kernel while client threads call the ports. Waiters are completed inside the lock through
/// TaskCompletionSources that run continuations asynchronously, so no client code ever runs under it.
/// </remarks>
public sealed partial class FakeKernel
{
    private readonly Lock _gate = new();
    private readonly SortedDictionary<int, FakeVictim> _victims = [];
    private readonly Dictionary<string, FakeImage> _images = new(StringComparer.Ordinal);
    private readonly List<string> _log = [];

    /// <summary>How reaped processes ended, so tests can still ask after the pid is gone.</summary>
    private readonly Dictionary<int, ExitStatus> _exits = [];
    private int _nextPid;
    private int _turn;
    private FaultPlan _faults = new();

    /// <summary>An empty kernel; pids are handed out from <paramref name="firstPid"/> on.</summary>
    /// <param name="firstPid">The first pid.</param>
    public FakeKernel(int firstPid = 100) => _nextPid = firstPid;

    /// <summary>The tracer's own pid: grabbing it fails with "cannot grab our own process".</summary>
    public int SelfPid { get; set; } = 42;

    /// <summary>
    /// Makes text writes (breakpoints, WriteMemory) on a running victim fail with EBUSY, as POKEDATA would. Off by
    /// default: the port allows writes while the victim runs (/proc/PID/mem, /proc/PID/as), and the fake applies
    /// them atomically between two steps.
    /// </summary>
    public bool RequireStopForWrites { get; set; }

    /// <summary>
    /// When a thread stops on a breakpoint, every other thread about to execute an int3 traps too, and its stop
    /// is reported after the next resume, whatever the text holds by then: the late, possibly spurious, hits
    /// of a multi-threaded victim on Linux (S14).
    /// </summary>
    public bool SimultaneousTraps { get; set; }

    /// <summary>The faults to inject into port operations; empty by default.</summary>
    public FaultPlan Faults
    {
        get { lock (_gate) { return _faults; } }
        set { lock (_gate) { _faults = value ?? throw new ArgumentNullException(nameof(value)); } }
    }

    /// <summary>Everything that happened, one line each ("pid 100: stop breakpoint 0x401040 tid 100").</summary>
    public IReadOnlyList<string> Log
    {
        get { lock (_gate) { return [.. _log]; } }
    }

    /// <summary>Makes <paramref name="image"/> executable by its path (and by its file name, as a PATH search would).</summary>
    public FakeKernel Register(FakeImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        lock (_gate)
        {
            _images[image.Path] = image;
        }

        return this;
    }

    /// <summary>Makes <paramref name="images"/> executable by path (and their libraries loadable).</summary>
    /// <param name="images">The programs.</param>
    public FakeKernel Register(params FakeImage[] images)
    {
        ArgumentNullException.ThrowIfNull(images);
        foreach (var image in images)
        {
            Register(image);
        }

        return this;
    }

    /// <summary>Starts <paramref name="image"/> untraced, as a user would from a shell (which reaps it).</summary>
    public int Spawn(FakeImage image, params string[] arguments)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(arguments);
        lock (_gate)
        {
            var victim = NewVictim(image, [image.Path, .. arguments]);
            victim.AutoReap = true;
            Record(victim, $"spawned {Format(victim.Arguments)}");
            return victim.Pid;
        }
    }

    /// <summary>Starts <paramref name="file"/> untraced, as a shell would, and returns its pid: a process for a grab.</summary>
    /// <param name="file">A registered image's path.</param>
    /// <param name="arguments">argv after argv[0].</param>
    public int Spawn(string file, params string[] arguments)
    {
        lock (_gate)
        {
            return Spawn(FindImage(file) ?? throw new ArgumentException($"no image registered as {file}", nameof(file)), arguments);
        }
    }

    /// <summary>A signal from outside: SIGSTOP group-stops, SIGCONT continues, SIGKILL kills; anything else is fatal.</summary>
    public void SendSignal(int pid, int signal)
    {
        lock (_gate)
        {
            if (!_victims.TryGetValue(pid, out var victim) || victim.Life != VictimLife.Alive)
            {
                Record(pid, $"signal {signal} from others: no such process");
                return;
            }

            Record(victim, $"signal {signal} from others");
            switch (signal)
            {
                case Signals.Stop:
                    GroupStop(victim);
                    break;
                case Signals.Cont:
                    ContinueGroup(victim);
                    break;
                case Signals.Kill:
                    Terminate(victim, ExitStatus.FromSignal(Signals.Kill));
                    break;
                default:
                    RaiseFatal(victim, victim.Threads.FirstOrDefault(), signal);
                    break;
            }

            CheckWatches();
        }
    }

    /// <summary>Another tool resumes a victim it (or the victim itself) stopped: prun, SIGCONT.</summary>
    public void ContinueByOthers(int pid) => SendSignal(pid, Signals.Cont);

    /// <summary>Sends SIGKILL to <paramref name="pid"/>.</summary>
    /// <param name="pid">The process.</param>
    public void Kill(int pid) => SendSignal(pid, Signals.Kill);

    /// <summary>Another debugger holds <paramref name="pid"/> (or lets go of it).</summary>
    public void SetTracedByOthers(int pid, bool traced = true)
    {
        lock (_gate)
        {
            Victim(pid).TracedByOthers = traced;
        }
    }

    /// <summary>Makes a grab of <paramref name="pid"/> fail with EPERM (or succeed again).</summary>
    /// <param name="pid">The process.</param>
    /// <param name="denied">False to allow again.</param>
    public void SetPermissionDenied(int pid, bool denied = true)
    {
        lock (_gate)
        {
            Victim(pid).PermissionDenied = denied;
        }
    }

    /// <summary>The parent of a zombie reaps it (a shell's wait).</summary>
    public void Reap(int pid)
    {
        lock (_gate)
        {
            var victim = Victim(pid);
            if (victim.Life == VictimLife.Zombie)
            {
                ReapNow(victim);
                CheckWatches();
            }
        }
    }

    /// <summary>
    /// The tracer process dies: every hold is closed without release. Created victims are killed, grabbed ones run on,
    /// and a victim whose tracer awaited an external resume stays stopped (S20).
    /// </summary>
    public void CrashTracer()
    {
        lock (_gate)
        {
            foreach (var victim in _victims.Values.ToList())
            {
                if (victim.Attachment is { PendingGrab: not null } seizing)
                {
                    FailPendingGrab(victim, seizing, "the tracer is gone", "the tracer is gone");
                }
                else if (victim.Attachment is { } attachment)
                {
                    CloseWithoutRelease(victim, attachment);
                }
            }

            CheckWatches();
        }
    }

    /// <summary>How the process looks from outside.</summary>
    public FakeObservation Observe(int pid)
    {
        lock (_gate)
        {
            if (!_victims.TryGetValue(pid, out var victim))
            {
                return FakeObservation.Gone;
            }

            var zombie = victim.Life == VictimLife.Zombie;
            var stopped = !zombie && (victim.GroupStopped || victim.Attachment is { Stopped: true });
            return new FakeObservation(true, zombie, stopped, victim.Attachment is not null || victim.TracedByOthers);
        }
    }

    /// <summary>True while <paramref name="pid"/> exists, zombies included.</summary>
    /// <param name="pid">The process.</param>
    public bool Exists(int pid) => Observe(pid).Exists;

    /// <summary>How <paramref name="pid"/> ended; null while it runs or if it never existed.</summary>
    /// <param name="pid">The process.</param>
    public ExitStatus? ExitStatusOf(int pid)
    {
        lock (_gate)
        {
            return _victims.TryGetValue(pid, out var victim) ? victim.Exit : _exits.GetValueOrDefault(pid);
        }
    }

    /// <summary>Every pid the kernel still has (alive or zombie), in order.</summary>
    public IReadOnlyList<int> Pids
    {
        get { lock (_gate) { return [.. _victims.Keys]; } }
    }

    /// <summary>The image <paramref name="pid"/> runs now (after any exec).</summary>
    public FakeImage ImageOf(int pid)
    {
        lock (_gate)
        {
            return Victim(pid).Image;
        }
    }

    /// <summary>The thread ids of <paramref name="pid"/>, the main thread first.</summary>
    /// <param name="pid">The process.</param>
    public IReadOnlyList<int> ThreadsOf(int pid)
    {
        lock (_gate)
        {
            return [.. Victim(pid).Threads.Select(t => t.Tid)];
        }
    }

    /// <summary>The pids of the children <paramref name="pid"/> forked and has not reaped.</summary>
    /// <param name="pid">The process.</param>
    public IReadOnlyList<int> ChildrenOf(int pid)
    {
        lock (_gate)
        {
            return [.. Victim(pid).Children.Select(c => c.Pid)];
        }
    }

    /// <summary>Reads memory from outside, whatever the victim's state (for checks in tests).</summary>
    public int ReadMemory(int pid, ulong address, Span<byte> destination)
    {
        lock (_gate)
        {
            return Victim(pid).Memory.Read(address, destination);
        }
    }

    /// <summary>The 8-byte global <paramref name="symbol"/> of <paramref name="pid"/> (the catalogue's <c>calls</c> counter).</summary>
    public long ReadGlobal(int pid, string symbol)
    {
        lock (_gate)
        {
            var victim = Victim(pid);
            if (!TryResolveSymbol(victim, null, symbol, out var address))
            {
                throw new KeyNotFoundException($"pid {pid} has no symbol '{symbol}'");
            }

            Span<byte> bytes = stackalloc byte[8];
            victim.Memory.Read(address, bytes);
            return BitConverter.ToInt64(bytes);
        }
    }

    /// <summary>True when every mapped text byte equals the object file's: no breakpoint left behind.</summary>
    public bool TextIsOriginal(int pid) => TextDifferences(pid).Count == 0;

    /// <summary>Addresses whose text differs from the object file's.</summary>
    public IReadOnlyList<ulong> TextDifferences(int pid)
    {
        lock (_gate)
        {
            var victim = Victim(pid);
            var differences = new List<ulong>();
            foreach (var mapping in victim.Mappings)
            {
                var text = mapping.File.Text;
                var current = new byte[text.Length];
                victim.Memory.Read(mapping.TextStart, current);
                for (var i = 0; i < text.Length; i++)
                {
                    if (current[i] != text[i])
                    {
                        differences.Add(mapping.TextStart + (ulong)i);
                    }
                }
            }

            return differences;
        }
    }

    /// <summary>What every victim is doing, for stuck simulations and failing tests.</summary>
    public string Describe()
    {
        lock (_gate)
        {
            var text = new StringBuilder();
            foreach (var victim in _victims.Values)
            {
                text.Append(CultureInfo.InvariantCulture, $"pid {victim.Pid} {victim.Image.Path}: {victim.Life}");
                if (victim.Exit is { } exit)
                {
                    text.Append(CultureInfo.InvariantCulture, $" ({exit})");
                }

                if (victim.GroupStopped)
                {
                    text.Append(", stopped by others");
                }

                if (victim.Attachment is { } attachment)
                {
                    text.Append(attachment.Stopped ? $", trace-stopped ({Format(attachment.LastStop)})" : ", traced");
                    text.Append(CultureInfo.InvariantCulture, $", {attachment.Reports.Count} unread report(s), waiter {(attachment.Waiter is null ? "none" : "pending")}");
                    if (attachment.PendingGrab is not null)
                    {
                        text.Append(", grab waiting for the vfork to end");
                    }

                    if (attachment.AwaitingExternalResume)
                    {
                        text.Append(", awaiting external resume");
                    }
                }

                text.AppendLine();
                foreach (var thread in victim.Threads)
                {
                    text.Append("    ").Append(thread).Append(Runnable(victim, thread) ? " (runnable)" : " (blocked)").AppendLine();
                }
            }

            return text.Length == 0 ? "no processes" : text.ToString();
        }
    }

    private FakeVictim Victim(int pid) =>
        _victims.TryGetValue(pid, out var victim) ? victim : throw new ArgumentException($"no process {pid}", nameof(pid));

    private FakeImage? FindImage(string file)
    {
        if (_images.TryGetValue(file, out var image))
        {
            return image;
        }

        return file.Contains('/', StringComparison.Ordinal)
            ? null
            : _images.Values.Where(i => i.Name == file).OrderBy(i => i.Path, StringComparer.Ordinal).FirstOrDefault();
    }

    private void Record(FakeVictim victim, string what) => Record(victim.Pid, what);

    private void Record(int pid, string what) => _log.Add(string.Create(CultureInfo.InvariantCulture, $"pid {pid}: {what}"));

    private static string Format(IReadOnlyList<string> arguments) => string.Join(' ', arguments);

    private static string Format(StopEvent stop) => stop.Kind switch
    {
        StopKind.Exited => stop.Exit.ToString(),
        StopKind.Lost => $"lost: {stop.Message}",
        _ => string.Create(CultureInfo.InvariantCulture, $"{Format(stop.Reason)} 0x{stop.ProgramCounter:x} tid {stop.ThreadId}"),
    };

    private static string Format(StopReason reason) => reason switch
    {
        StopReason.None => "stopped",
        StopReason.StoppedByOthers => "stopped by others",
        StopReason.ResumedByOthers => "resumed by others",
        StopReason.Breakpoint => "breakpoint",
        StopReason.SingleStep => "single step",
        StopReason.ForkStarting => "fork starting",
        StopReason.ForkDone => "fork done",
        StopReason.VforkDone => "vfork done",
        StopReason.ExecDone => "exec done",
        StopReason.Interrupted => "interrupted",
        StopReason.Signal => "signal",
        _ => reason.ToString(),
    };
}

/// <summary>A process as seen from outside (ps, /proc): the fake's answer to the scenario suite's observation.</summary>
/// <param name="Exists">Still has a pid (zombies included).</param>
/// <param name="Zombie">Dead, not yet reaped.</param>
/// <param name="Stopped">Group-stopped or trace-stopped.</param>
/// <param name="Traced">Some tracer is attached.</param>
public sealed record FakeObservation(bool Exists, bool Zombie, bool Stopped, bool Traced)
{
    /// <summary>What is observed of a pid that does not exist.</summary>
    public static readonly FakeObservation Gone = new(false, false, false, false);
}
