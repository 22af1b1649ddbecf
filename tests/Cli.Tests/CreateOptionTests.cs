using ProcHex.Cli.Tests.Support;

namespace ProcHex.Cli.Tests;

/// <summary>Issue 22 item 1: <c>prochex run --cwd DIR --stdin FILE --stdout FILE --stderr FILE --no-aslr</c> on real programs.</summary>
[Trait("Issue", "22")]
public class CreateOptionTests
{
    private static readonly string Program = FixturePrograms.PathOf("stdio");

    private static string ScratchDir()
    {
        var dir = Path.Combine(FixturePrograms.Dir, $"cli-opts-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    [Fact]
    public void Item1_cwd_and_stdout_put_the_program_in_the_directory_and_its_output_in_the_file()
    {
        var dir = ScratchDir();
        var output = Path.Combine(dir, "out");
        var result = Prochex.Run("run", "--cwd", dir, "--stdout", output, "--", Program, "cwd");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(dir + "\n", File.ReadAllText(output));
        Assert.DoesNotContain(dir, result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Item1_stdin_stdout_and_stderr_files_are_the_program_descriptors()
    {
        var dir = ScratchDir();
        var (input, output, error) = (Path.Combine(dir, "in"), Path.Combine(dir, "out"), Path.Combine(dir, "err"));
        File.WriteAllText(input, "line from the file\n");

        var echo = Prochex.Run("run", "--stdin", input, "--stdout", output, Program, "echo");
        Assert.True(echo.ExitCode == 0, echo.ToString());
        Assert.Equal("line from the file\n", File.ReadAllText(output));

        var both = Prochex.Run("run", "--stdout", output, "--stderr", error, "--", Program, "both");
        Assert.True(both.ExitCode == 0, both.ToString());
        Assert.Equal("out\n", File.ReadAllText(output));
        Assert.Equal("err\n", File.ReadAllText(error));
    }

    [Fact]
    public void Item1_no_aslr_gives_the_same_layout_on_every_run()
    {
        var dir = ScratchDir();
        string Layout(int run)
        {
            var output = Path.Combine(dir, $"layout-{run}");
            var result = Prochex.Run("run", "--no-aslr", "--stdout", output, "--", Program, "layout");
            Assert.True(result.ExitCode == 0, result.ToString());
            return File.ReadAllText(output);
        }

        Assert.Equal(Layout(1), Layout(2));
    }

    [Fact]
    public void Item1_a_missing_cwd_fails_with_exit_1_and_says_which_directory()
    {
        var missing = Path.Combine(ScratchDir(), "absent");
        var result = Prochex.Run("run", "--cwd", missing, "--", Program, "cwd");

        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.Contains(result.StderrLines, l => l.EndsWith($"cannot use working directory {missing}: No such file or directory", StringComparison.Ordinal));
    }

    [Fact]
    public void Item1_an_unwritable_stdout_file_fails_with_exit_1_and_names_it()
    {
        var dir = ScratchDir();
        var result = Prochex.Run("run", "--stdout", dir, "--", Program, "cwd");

        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.Contains(result.StderrLines, l => l.EndsWith($"cannot open {dir} for standard output: Is a directory", StringComparison.Ordinal));
    }

    [Fact]
    public void Item1_an_unknown_option_among_the_new_ones_is_still_a_usage_error()
    {
        var result = Prochex.Run("run", "--no-aslr", "--cwdx", "/", "--", "/bin/true");

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Equal(
            ["prochex: Unrecognized command or argument '--cwdx'.", "Try 'prochex --help' for more information."],
            result.StderrLines);
    }
}
