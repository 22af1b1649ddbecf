using ProcHex.Victims;

namespace ProcHex.Tests;

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
        var lifecycle = new VictimLifecycle(VictimState.Released, 42);

        var error = Assert.Throws<IllegalTransitionException>(() => lifecycle.Fire(VictimTrigger.Resume));

        Assert.Equal("pid 42: cannot set it running while it is Released", error.Message);
    }

    [Fact]
    [Trait("Spec", "S9")]
    public void Stop_and_resume_from_the_compiled_table_move_exactly_as_the_stateless_machine_does()
    {
        foreach (var state in Enum.GetValues<VictimState>())
        {
            foreach (var trigger in new[] { VictimTrigger.Stop, VictimTrigger.Resume })
            {
                var fast = new VictimLifecycle(state, 7);
                if (fast.CanFire(trigger))
                {
                    fast.Fire(trigger);
                    var viaStateless = new VictimLifecycle(state, 7);
                    viaStateless.FireThroughStateless(trigger);
                    Assert.Equal(viaStateless.State, fast.State);
                }
                else
                {
                    Assert.Throws<IllegalTransitionException>(() => fast.Fire(trigger));
                    Assert.Equal(state, fast.State);
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
