using Sys = ProcHex.Backends.Linux.Interop.Sys;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace ProcHex.Backends.Linux.Simulation.Tests;

/// <summary>
/// The same scripted scenarios on the real kernel (the spin2 fixture) and on the fake (its spin2, under many
/// seeds): the sequences of observations (each wait's report, by thread role; /proc states) must be equal.
/// Every real-kernel step waits for the one report it expects, on a thread held stopped where another could race
/// it, so the real side is deterministic too.
/// </summary>
public class DifferentialTests(Xunit.Abstractions.ITestOutputHelper output)
{
    public static TheoryData<string> Scenarios => [.. All.Keys];

    private static readonly Dictionary<string, Func<IScenarioKernel, List<string>>> All = new()
    {
        ["stop, listen, continue"] = StopListenContinue,
        ["SIGCONT before the worker reported the group stop"] = ContinueBeforeTheWorkerReported,
        ["stale and listening interrupts"] = Interrupts,
        ["detaching a listener"] = DetachAListener,
    };

    [Theory]
    [MemberData(nameof(Scenarios))]
    public void The_fake_kernel_reports_what_the_real_kernel_reports(string scenario)
    {
        var real = RealKernel.Run(All[scenario]);
        output.WriteLine($"real: {string.Join(" | ", real)}");
        for (var seed = 1; seed <= 25; seed++)
        {
            var fake = new FakeScenarioKernel(seed);
            var observed = All[scenario](fake);
            Assert.True(real.SequenceEqual(observed),
                $"seed {seed}:\nreal: {string.Join(" | ", real)}\nfake: {string.Join(" | ", observed)}\n{string.Join('\n', fake.Log)}");
        }
    }

    /// <summary>SIGSTOP, both threads' group stops, LISTEN on both, SIGCONT wakes both with a trap-stop, SIGCONT delivered.</summary>
    private static List<string> StopListenContinue(IScenarioKernel k)
    {
        var seen = new Observations(k);
        seen.States();
        seen.Ok(k.Tgkill(k.Leader, Sys.SIGSTOP));
        seen.Wait(k.Leader);
        seen.Ok(k.Ptrace(Sys.PTRACE_CONT, k.Leader, Sys.SIGSTOP));
        seen.Wait(k.Leader);
        seen.Wait(k.Worker);
        seen.Ok(k.Ptrace(Sys.PTRACE_LISTEN, k.Leader, 0));
        seen.Ok(k.Ptrace(Sys.PTRACE_LISTEN, k.Worker, 0));
        seen.States();
        seen.Ok(k.Kill(Sys.SIGCONT));
        seen.Wait(k.Leader);
        seen.Wait(k.Worker);
        seen.Ok(k.Ptrace(Sys.PTRACE_CONT, k.Leader, 0));
        seen.Wait(k.Leader);
        seen.Ok(k.Ptrace(Sys.PTRACE_CONT, k.Leader, 0));
        seen.Ok(k.Ptrace(Sys.PTRACE_CONT, k.Worker, 0));
        k.Settle();
        seen.States();
        return seen.List;
    }

    /// <summary>
    /// The worker is held in a trap-stop while the leader starts a group stop; SIGCONT comes before the worker
    /// could report it: the worker re-traps with SIGTRAP, the leader (in its group-stop, not listening) stays
    /// stopped until resumed, then re-traps, then gets the SIGCONT.
    /// </summary>
    private static List<string> ContinueBeforeTheWorkerReported(IScenarioKernel k)
    {
        var seen = new Observations(k);
        seen.Ok(k.Ptrace(Sys.PTRACE_INTERRUPT, k.Worker, 0));
        seen.Wait(k.Worker);
        seen.Ok(k.Tgkill(k.Leader, Sys.SIGSTOP));
        seen.Wait(k.Leader);
        seen.Ok(k.Ptrace(Sys.PTRACE_CONT, k.Leader, Sys.SIGSTOP));
        seen.Wait(k.Leader);
        seen.States();
        seen.Ok(k.Kill(Sys.SIGCONT));
        k.Settle();
        seen.States();
        seen.Ok(k.Ptrace(Sys.PTRACE_CONT, k.Worker, 0));
        seen.Wait(k.Worker);
        seen.Ok(k.Ptrace(Sys.PTRACE_CONT, k.Leader, 0));
        seen.Wait(k.Leader);
        seen.Ok(k.Ptrace(Sys.PTRACE_CONT, k.Leader, 0));
        seen.Wait(k.Leader);
        seen.Ok(k.Ptrace(Sys.PTRACE_CONT, k.Leader, 0));
        seen.Ok(k.Ptrace(Sys.PTRACE_CONT, k.Worker, 0));
        k.Settle();
        seen.States();
        return seen.List;
    }

    /// <summary>An interrupt of a stopped thread fires after its resume; LISTEN without a group stop; interrupting a listener.</summary>
    private static List<string> Interrupts(IScenarioKernel k)
    {
        var seen = new Observations(k);
        seen.Ok(k.Ptrace(Sys.PTRACE_INTERRUPT, k.Leader, 0));
        seen.Wait(k.Leader);
        seen.Ok(k.Ptrace(Sys.PTRACE_INTERRUPT, k.Leader, 0));
        seen.Ok(k.Ptrace(Sys.PTRACE_CONT, k.Leader, 0));
        seen.Wait(k.Leader);
        seen.Ok(k.Ptrace(Sys.PTRACE_LISTEN, k.Leader, 0));
        k.Settle();
        seen.States();
        seen.Ok(k.Ptrace(Sys.PTRACE_CONT, k.Leader, 0));
        seen.Ok(k.Ptrace(Sys.PTRACE_INTERRUPT, k.Leader, 0));
        seen.Wait(k.Leader);
        seen.Ok(k.Ptrace(Sys.PTRACE_CONT, k.Worker, 0));
        seen.Ok(k.Ptrace(Sys.PTRACE_CONT, k.Leader, 0));
        k.Settle();
        seen.States();
        return seen.List;
    }

    /// <summary>
    /// PTRACE_DETACH of a thread in PTRACE_LISTEN fails with ESRCH (ptrace_check_attach: ptrace_freeze_traced refuses
    /// a JOBCTL_LISTENING task) and leaves it traced; once interrupted and collected, it detaches and stays in the
    /// group stop, untraced (linux simulation seed 8106: the release parked a thread, then could not detach it).
    /// </summary>
    private static List<string> DetachAListener(IScenarioKernel k)
    {
        var seen = new Observations(k);
        seen.Ok(k.Tgkill(k.Leader, Sys.SIGSTOP));
        seen.Wait(k.Leader);
        seen.Ok(k.Ptrace(Sys.PTRACE_CONT, k.Leader, Sys.SIGSTOP));
        seen.Wait(k.Leader);
        seen.Wait(k.Worker);
        seen.Ok(k.Ptrace(Sys.PTRACE_LISTEN, k.Worker, 0));
        seen.Ok(k.Ptrace(Sys.PTRACE_DETACH, k.Worker, 0));
        seen.Ok(k.Ptrace(Sys.PTRACE_INTERRUPT, k.Worker, 0));
        seen.Wait(k.Worker);
        seen.Ok(k.Ptrace(Sys.PTRACE_DETACH, k.Worker, 0));
        seen.Ok(k.Ptrace(Sys.PTRACE_DETACH, k.Leader, 0));
        k.Settle();
        seen.States();
        return seen.List;
    }

    /// <summary>The observable outcomes of a scenario, by thread role.</summary>
    private sealed class Observations(IScenarioKernel k)
    {
        public List<string> List { get; } = [];

        public void Wait(int tid) => List.Add($"{Role(tid)}: {FakeVictims.Describe(k.Wait(tid))}");

        public void States() => List.Add($"states {k.State(k.Leader)}{k.State(k.Worker)}");

        /// <summary>A call's result, 0 or the errno: part of the outcome too.</summary>
        public void Ok(int result) => List.Add(result == 0 ? "ok" : $"errno {result}");

        private string Role(int tid) => tid == k.Leader ? "leader" : "worker";
    }
}
