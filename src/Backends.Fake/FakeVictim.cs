using ProcHex.Ports;

namespace ProcHex.Backends.Fake;

internal enum VictimLife
{
    Alive,
    Zombie,
    Reaped,
}

/// <summary>An object placed in a victim's memory with its load bias.</summary>
internal sealed record FakeMapping(FakeObjectFile File, ulong Bias, FakeLibrary? Library)
{
    public string Path => File.Path;

    public ulong TextStart => File.TextStart + Bias;

    public bool Contains(ulong address) => address >= Bias && File.Contains(address - Bias);
}

/// <summary>A process of the fake kernel, traced or not. Only the kernel touches it, under its lock.</summary>
internal sealed class FakeVictim
{
    public FakeVictim(int pid, FakeImage image, IReadOnlyList<string> arguments, FakeMemory memory)
    {
        Pid = pid;
        Image = image;
        Arguments = arguments;
        Memory = memory;
    }

    public int Pid { get; }

    public FakeImage Image { get; set; }

    /// <summary>Addresses of traps planted into the current image; an exec forgets them.</summary>
    public HashSet<ulong> Planted { get; } = [];

    public IReadOnlyList<string> Arguments { get; set; }

    /// <summary>What the create asked for (issue 22 item 1); null for a spawned victim.</summary>
    public ProcessStartRequest? StartRequest { get; set; }

    /// <summary>The working directory the victim runs in: the create's, or "/".</summary>
    public string WorkingDirectory { get; set; } = "/";

    /// <summary>The victim's ends of its piped standard descriptors 0, 1 and 2; null where not piped.</summary>
    public FakePipe?[] Pipes { get; } = new FakePipe?[3];

    /// <summary>The pipe on <paramref name="descriptor"/>, or null.</summary>
    public FakePipe? Pipe(int descriptor) => descriptor is >= 0 and < 3 ? Pipes[descriptor] : null;

    /// <summary>At death every descriptor closes: readers of its output see end of file.</summary>
    public void ClosePipes()
    {
        foreach (var pipe in Pipes)
        {
            pipe?.End();
        }
    }

    public FakeMemory Memory { get; set; }

    public List<FakeMapping> Mappings { get; } = [];

    public List<FakeThread> Threads { get; } = [];

    /// <summary>Bumped by exec so agents and symbol snapshots of the old image can tell.</summary>
    public int Generation { get; set; }

    public const ulong FirstLibraryBase = 0x7f00_0000_0000;

    public ulong NextLibraryBase { get; set; } = FirstLibraryBase;

    public VictimLife Life { get; set; }

    public ExitStatus? Exit { get; set; }

    /// <summary>Job-control stop by someone else: nothing runs until SIGCONT, whatever a tracer does.</summary>
    public bool GroupStopped { get; set; }

    /// <summary>The tracer has heard of the current group-stop (it may arrive while already trace-stopped).</summary>
    public bool GroupStopReported { get; set; }

    public FakeAttachment? Attachment { get; set; }

    /// <summary>Another debugger holds it: grabbing for control fails.</summary>
    public bool TracedByOthers { get; set; }

    public bool PermissionDenied { get; set; }

    public RtldEventMessage RtldMessage { get; set; }

    public FakeVictim? Parent { get; set; }

    public List<FakeVictim> Children { get; } = [];

    /// <summary>Its parent reaps it as soon as it dies (a shell, init); false while the tracer is its parent.</summary>
    public bool AutoReap { get; set; }

    /// <summary>Set on a vfork child: the parent thread waiting for it to exec or exit.</summary>
    public FakeThread? VforkParentThread { get; set; }

    /// <summary>A thread waits in vfork for its child to exec or exit: it cannot stop before (see FakeKernel.Grab).</summary>
    public bool WaitsInVfork => Threads.Exists(t => t.VforkChild is not null);

    public FakeThread? FindThread(int tid) => Threads.Find(t => t.Tid == tid);

    public FakeMapping? MappingAt(ulong address) => Mappings.Find(m => m.Contains(address));
}

/// <summary>The kernel side of one tracer's hold on a victim: stop state, pending reports, the waiter.</summary>
internal sealed class FakeAttachment
{
    public bool ControlEnabled { get; set; }

    /// <summary>Trace-stopped: held for the tracer until Resume.</summary>
    public bool Stopped { get; set; }

    public StopEvent LastStop { get; set; }

    public Queue<StopEvent> Reports { get; } = new();

    public TaskCompletionSource<StopEvent>? Waiter { get; set; }

    public CancellationTokenRegistration WaiterRegistration { get; set; }

    /// <summary>Set by AwaitExternalResume: a tracer crash now leaves the victim stopped (PRELEASE_HANG).</summary>
    public bool AwaitingExternalResume { get; set; }

    /// <summary>A fatal signal the victim stopped for; Resume delivers it.</summary>
    public int PendingSignal { get; set; }

    /// <summary>The grab that attached, still waiting for a thread in vfork to stop; null once it completed.</summary>
    public PendingGrab? PendingGrab { get; set; }

    /// <summary>Created by us: closing without release kills it.</summary>
    public bool KillOnLastClose { get; set; }

    public bool Lost { get; set; }

    public bool Released { get; set; }
}

/// <summary>A grab for control that waits for its victim to stop: the kernel completes or fails it.</summary>
internal sealed class PendingGrab(GrabAccess access)
{
    public GrabAccess Access { get; } = access;

    public TaskCompletionSource<ITracedProcess> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public CancellationTokenRegistration Registration { get; set; }
}
