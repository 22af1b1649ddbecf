using System.Text.RegularExpressions;

namespace ProcHex.DocSnippets;

/// <summary>
/// Issue 21 item 6: every C# block of docs/library.md is a snippet of compiled code (this project or the samples),
/// marked <c>&lt;!-- snippet: NAME --&gt;</c> just above it, and equal to it line for line; a block without a snippet,
/// a snippet the document lost, or one edited on one side only fails here.
/// </summary>
public sealed partial class LibraryDocTests
{
    private static readonly string Root = FindRoot();

    [Fact]
    public void Every_csharp_block_of_library_md_is_its_compiled_snippet()
    {
        var snippets = CompiledSnippets();
        var blocks = DocBlocks();
        Assert.NotEmpty(blocks);
        foreach (var (name, text) in blocks)
        {
            Assert.True(name is not null, $"docs/library.md: a csharp block has no <!-- snippet: NAME --> line above it:\n{text}");
            Assert.True(snippets.ContainsKey(name), $"docs/library.md names snippet '{name}', which no compiled file has");
            Assert.Equal(snippets[name], text);
        }
    }

    [Fact]
    public void Every_snippet_of_this_project_is_shown_in_library_md()
    {
        var shown = DocBlocks().Select(b => b.Name).ToHashSet();
        var own = Snippets(File.ReadAllText(Path.Combine(Root, "tests/DocSnippets/Snippets.cs"))).Keys;
        var lost = own.Where(name => !shown.Contains(name)).ToList();
        Assert.True(lost.Count == 0, $"snippets docs/library.md does not show: {string.Join(", ", lost)}");
    }

    private static List<(string? Name, string Text)> DocBlocks()
    {
        var lines = File.ReadAllLines(Path.Combine(Root, "docs/library.md"));
        var blocks = new List<(string?, string)>();
        string? pending = null;
        for (var i = 0; i < lines.Length; i++)
        {
            if (SnippetMarker().Match(lines[i]) is { Success: true } marker)
            {
                pending = marker.Groups[1].Value;
            }
            else if (lines[i].StartsWith("```csharp", StringComparison.Ordinal))
            {
                var end = Array.FindIndex(lines, i + 1, l => l.StartsWith("```", StringComparison.Ordinal));
                Assert.True(end > i, $"docs/library.md line {i + 1}: a csharp block never ends");
                blocks.Add((pending, string.Join('\n', lines[(i + 1)..end])));
                pending = null;
                i = end;
            }
            else if (lines[i].Trim().Length > 0)
            {
                pending = null;
            }
        }

        return blocks;
    }

    private static Dictionary<string, string> CompiledSnippets()
    {
        var files = Directory.GetFiles(Path.Combine(Root, "tests/DocSnippets"), "*.cs")
            .Concat(Directory.GetFiles(Path.Combine(Root, "samples"), "*.cs", SearchOption.AllDirectories))
            .Where(f => !f.Contains("/obj/", StringComparison.Ordinal) && !f.Contains("/bin/", StringComparison.Ordinal));
        var all = new Dictionary<string, string>();
        foreach (var file in files)
        {
            foreach (var (name, text) in Snippets(File.ReadAllText(file)))
            {
                Assert.True(all.TryAdd(name, text), $"snippet '{name}' is defined twice (again in {file})");
            }
        }

        return all;
    }

    /// <summary>The snippets of one file, their common indentation removed.</summary>
    private static Dictionary<string, string> Snippets(string source)
    {
        var found = new Dictionary<string, string>();
        var lines = source.ReplaceLineEndings("\n").Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            if (BeginSnippet().Match(lines[i]) is not { Success: true } begin)
            {
                continue;
            }

            var end = Array.FindIndex(lines, i + 1, l => l.Trim() == "// end-snippet");
            Assert.True(end > i, $"snippet '{begin.Groups[1].Value}' has no // end-snippet");
            var body = lines[(i + 1)..end];
            var indent = body.Where(l => l.Trim().Length > 0).Select(l => l.Length - l.TrimStart().Length).DefaultIfEmpty(0).Min();
            found[begin.Groups[1].Value] = string.Join('\n', body.Select(l => l.Length >= indent ? l[indent..] : l.TrimStart()));
            i = end;
        }

        return found;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ProcHex.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"no ProcHex.sln above {AppContext.BaseDirectory}");
    }

    [GeneratedRegex(@"^<!-- snippet: ([\w-]+) -->\s*$")]
    private static partial Regex SnippetMarker();

    [GeneratedRegex(@"^\s*// begin-snippet: ([\w-]+)\s*$")]
    private static partial Regex BeginSnippet();
}
