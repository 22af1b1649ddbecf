using NSubstitute;
using ProcHex.Victims;

namespace ProcHex.Core.Tests;

/// <summary>docs/victim-lifecycle.md is the Stateless machine's own export; this keeps it true.</summary>
public sealed class LifecycleDiagramTests
{
    [Fact]
    [Trait("Spec", "S9")]
    public void The_documented_state_graph_is_the_machines_graph()
    {
        var root = FindRepositoryRoot();
        var path = Path.Combine(root, "docs", "victim-lifecycle.md");
        var expected = Render(VictimLifecycle.ToMermaid());
        if (Environment.GetEnvironmentVariable("PROCHEX_UPDATE_DOCS") == "1")
        {
            File.WriteAllText(path, expected);
        }

        Assert.True(File.Exists(path), $"{path} is missing: run the tests once with PROCHEX_UPDATE_DOCS=1");
        Assert.Equal(expected, File.ReadAllText(path));
    }

    [Fact]
    [Trait("Spec", "S9")]
    public void An_illegal_transition_is_a_clear_error()
    {
        var lifecycle = new VictimLifecycle(LifecycleState.Released, 42);

        var error = Assert.Throws<IllegalTransitionException>(() => lifecycle.Fire(VictimTrigger.Resume));

        Assert.Equal("pid 42: cannot set it running while it is Released", error.Message);
    }

    /// <summary>Issue 16 item 2: the hot-path table stays the Stateless graph, superstates and substates included.</summary>
    [Fact]
    [Trait("Spec", "S9")]
    [Trait("Issue", "16.2")]
    public void Stop_and_resume_from_the_compiled_table_move_exactly_as_the_stateless_machine_does()
    {
        foreach (var state in LifecycleTruthTests.CurrentStates)
        {
            foreach (var trigger in new[] { VictimTrigger.Stop, VictimTrigger.Resume })
            {
                var fast = new VictimLifecycle(state, 7);
                if (fast.CanFire(trigger))
                {
                    fast.Fire(trigger);
                    var viaStateless = new VictimLifecycle(state, 7);
                    viaStateless.FireThroughStateless(trigger);
                    Assert.Equal(viaStateless.Current, fast.Current);
                }
                else
                {
                    Assert.Throws<IllegalTransitionException>(() => fast.Fire(trigger));
                    Assert.Equal(state, fast.Current);
                }
            }
        }
    }

    /// <summary>
    /// Issue 16 item 2: the table skips Stateless, so no Stop or Resume may cross a state whose entry or exit takes
    /// traps out or puts them back (Idle, Forking): fired through Stateless, none touches the text.
    /// </summary>
    [Fact]
    [Trait("Spec", "S10")]
    [Trait("Issue", "16.2")]
    public void No_stop_or_resume_runs_an_entry_or_exit_action()
    {
        foreach (var state in LifecycleTruthTests.CurrentStates)
        {
            foreach (var trigger in new[] { VictimTrigger.Stop, VictimTrigger.Resume })
            {
                var (lifecycle, process) = LifecycleTruthTests.WithOnePlantedTrap(state);
                if (lifecycle.CanFire(trigger))
                {
                    process.ClearReceivedCalls();
                    lifecycle.FireThroughStateless(trigger);
                    Assert.Empty(process.ReceivedCalls());
                }
            }
        }
    }

    private static string Render(string mermaid) =>
        "# Victim lifecycle\n\n" +
        "Exported from `src/Core/Victims/VictimLifecycle.cs` (Stateless). Regenerate with\n" +
        "`PROCHEX_UPDATE_DOCS=1 dotnet test tests/Core.Tests --filter LifecycleDiagram`.\n\n" +
        "```mermaid\n" + mermaid.TrimEnd() + "\n```\n";

    private static string FindRepositoryRoot([System.Runtime.CompilerServices.CallerFilePath] string thisFile = "")
    {
        for (var dir = new DirectoryInfo(Path.GetDirectoryName(thisFile)!); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ProcHex.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("ProcHex.sln not found above " + thisFile);
    }
}
