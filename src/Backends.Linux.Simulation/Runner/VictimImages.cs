using ProcHex.Backends.Linux.Simulation.Kernel;

namespace ProcHex.Backends.Linux.Simulation.Runner;

/// <summary>
/// The victims a seed runs: a leader and workers that compute in loops over the breakpoint sites, spawn short-lived
/// threads, and (by seed) fork or vfork children that exec or exit, or exec themselves once.
/// </summary>
internal sealed class VictimImages
{
    /// <summary>Where the loop of main starts (after the thread spawns).</summary>
    private const int LoopStart = 4;

    public VictimImages(Random random)
    {
        Workers = random.Next(1, 4);
        Churn = random.Next(3) != 0;
        Forks = random.Next(4) switch { 0 => ForkKind.Fork, 1 => ForkKind.Vfork, _ => ForkKind.None };
        Execs = random.Next(5) == 0;
        ExecDelay = random.Next(20, 400);
        var child = new FakeImage("child-exec").Function("main", new Compute(2), new ExitGroup(0));
        ChildImage = child;
        After = Build("churn-after", execer: false, random);
        Image = Build("churn", Execs, random);
    }

    public enum ForkKind
    {
        None,
        Fork,
        Vfork,
    }

    public int Workers { get; }

    public bool Churn { get; }

    public ForkKind Forks { get; }

    public bool Execs { get; }

    public int ExecDelay { get; }

    public FakeImage Image { get; }

    /// <summary>What the victim execs into (same layout, so the sites stay where they were; it execs no more).</summary>
    public FakeImage After { get; }

    public FakeImage ChildImage { get; }

    /// <summary>The breakpoint sites: a step of main's loop and the first step of the worker.</summary>
    public IReadOnlyList<ulong> Sites => [Image.AddressOf("main") + LoopStart, Image.AddressOf("worker")];

    public override string ToString() =>
        $"{Workers} worker(s), churn {Churn}, forks {Forks}, exec {(Execs ? $"after {ExecDelay}" : "no")}";

    private FakeImage Build(string name, bool execer, Random random)
    {
        // main: spawn the workers (and the execer, the forker), then loop. Unused spawn slots compute.
        var spawns = new List<ProgramStep>();
        for (var i = 0; i < Workers; i++)
        {
            spawns.Add(new SpawnThread("worker"));
        }

        if (execer)
        {
            spawns.Add(new SpawnThread("execer"));
        }

        while (spawns.Count < LoopStart)
        {
            spawns.Add(new Compute(1));
        }

        var loop = new List<ProgramStep> { new Compute(1), new Compute(2) };
        if (Churn)
        {
            loop.Add(new SpawnThread("brief"));
        }

        if (Forks != ForkKind.None)
        {
            loop.Add(new Fork("child", Forks == ForkKind.Vfork));
        }

        loop.Add(new Sleep(random.Next(1, 4)));
        loop.Add(new Jump(LoopStart));
        return new FakeImage(name)
            .Function("main", [.. spawns, .. loop])
            .Function("worker", new Compute(1), new Sleep(2), new Compute(1), new Jump(0))
            .Function("brief", new Compute(2), new ExitThread(0))
            .Function("child", new Compute(1), random.Next(2) == 0 ? new Exec(ChildImage) : new ExitGroup(0))
            .Function("execer", new Sleep(ExecDelay), new Exec(After));
    }
}
