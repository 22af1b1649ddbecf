using ProcHex.Cli.Tests.Support;

namespace ProcHex.Cli.Tests;

/// <summary>Errors are one clear line on stderr and exit 2 (usage) or 1 (failure); no victim is left behind.</summary>
public class FailureTests
{
    [Fact]
    public void An_unknown_program_is_one_line_and_exit_1()
    {
        var result = Prochex.Run("run", "--count", "work", "--", "/nonexistent/prochex-test-program");

        Assert.Equal(1, result.ExitCode);
        Assert.Equal("", result.Stdout);
        Assert.Equal(
            ["prochex: failed to execute /nonexistent/prochex-test-program: No such file or directory"],
            result.StderrLines);
    }

    [Theory]
    [InlineData("attach")]
    [InlineData("inspect")]
    public void An_unknown_pid_is_one_line_and_exit_1(string command)
    {
        var pid = Targets.UnusedPid();

        var result = Prochex.Run(command, pid.ToString(System.Globalization.CultureInfo.InvariantCulture));

        Assert.Equal(1, result.ExitCode);
        Assert.Equal([$"prochex: failed to grab pid {pid}: no such process"], result.StderrLines);
    }

    [Fact]
    public void An_unknown_bare_symbol_is_a_warning_and_the_programs_status_stands_but_strict_exits_1_leaving_no_victim()
    {
        var lenient = Prochex.Run("run", "--count", "no_such_symbol_anywhere", "--", FixturePrograms.PathOf("loop"), "2", "6");
        var strict = Prochex.Run("run", "--strict", "--count", "no_such_symbol_anywhere", "--", FixturePrograms.PathOf("loop"), "2", "6");

        Assert.True(lenient.ExitCode == 6, lenient.ToString());
        Assert.Contains(lenient.StderrLines, l => l.StartsWith("prochex: warning: SPEC 'no_such_symbol_anywhere' was not found in any image", StringComparison.Ordinal));
        Assert.True(strict.ExitCode == 1, strict.ToString());
        Assert.Contains(strict.StderrLines, l => l.StartsWith("prochex: --strict: 'no_such_symbol_anywhere' not defined in the final image", StringComparison.Ordinal));
        var pid = Prochex.PidIn(strict.StderrLines.First(l => l.Contains(": created ", StringComparison.Ordinal)));
        Assert.False(Targets.IsAlive(pid));
    }

    [Fact]
    public void An_unknown_symbol_of_a_loaded_object_stays_pending_and_is_reported_not_found()
    {
        var result = Prochex.Run("run", "--json", "--count", "a.out`no_such_symbol", "--", FixturePrograms.PathOf("loop"), "1");

        Assert.True(result.ExitCode == 0, result.ToString());
        var pending = Assert.Single(result.JsonLines, e => (string?)e["event"] == "pending");
        Assert.Contains("a.out does not define no_such_symbol", (string?)pending["reason"], StringComparison.Ordinal);
        Assert.Equal("not found", (string?)result.Summary["specs"]![0]!["status"]);
    }

    [Fact]
    public void An_unknown_spec_on_attach_stays_pending_and_strict_exits_1_releasing_the_process_untouched()
    {
        var victim = Targets.Start("sleeper");
        try
        {
            var result = Prochex.Run("attach", victim.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), "--strict", "--duration", "0.5", "--count", "no_such_symbol_anywhere");

            Assert.True(result.ExitCode == 1, result.ToString());
            Assert.Contains("prochex: no_such_symbol_anywhere is pending: no object of ", result.Stderr, StringComparison.Ordinal);
            Assert.Contains("prochex: --strict: 'no_such_symbol_anywhere' not defined in the final image", result.Stderr, StringComparison.Ordinal);
            Assert.Equal("0", Targets.Status(victim.Id, "TracerPid"));
            Assert.True(Targets.IsAlive(victim.Id));
            Assert.False(Targets.Status(victim.Id, "State")!.StartsWith('T'));
        }
        finally
        {
            Targets.Kill(victim);
        }
    }

    [Theory]
    [InlineData("run", "--count", "a`", "--", "/bin/true")]
    [InlineData("run", "--count", "`b", "--", "/bin/true")]
    [InlineData("run", "--count", "work")]
    [InlineData("run", "--stop-at", "later", "--", "/bin/true")]
    [InlineData("attach", "not-a-pid")]
    [InlineData("attach", "0")]
    [InlineData("attach", "1", "--duration", "-3")]
    [InlineData("attach", "--count", "work")]
    [InlineData("attach", "1", "-p", "x")]
    [InlineData("--backend", "windows", "inspect", "1")]
    [InlineData("frobnicate")]
    public void A_usage_error_exits_2_with_a_message(params string[] args)
    {
        var result = Prochex.Run(args);

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Equal("", result.Stdout);
        Assert.StartsWith("prochex: ", result.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--bogus-flag", "run", "--bogus-flag", "--", "/bin/true")]
    [InlineData("--bogus-flag", "run", "--bogus-flag", "/bin/true")]
    [InlineData("--nope", "run", "--count", "work", "--nope", "/bin/true")]
    [InlineData("-x", "run", "-x", "--", "/bin/true")]
    [InlineData("--bogus", "attach", "--bogus", "1")]
    [InlineData("--bogus", "attach", "1", "--bogus")]
    [InlineData("--bogus", "inspect", "--bogus", "1")]
    [InlineData("--bogus", "inspect", "1", "--bogus")]
    [InlineData("--bogus", "--bogus", "run", "--", "/bin/true")]
    public void An_unknown_option_before_the_program_is_a_usage_error_naming_it_issue_17_item_7(string option, params string[] args)
    {
        var result = Prochex.Run(args);

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Equal("", result.Stdout);
        Assert.Equal(
            [$"prochex: Unrecognized command or argument '{option}'.", "Try 'prochex --help' for more information."],
            result.StderrLines);
    }

    [Theory]
    [InlineData(ForeignPrograms.I386, "ELF32 i386")]
    [InlineData(ForeignPrograms.Aarch64, "ELF64 aarch64")]
    [InlineData(ForeignPrograms.I386Script, "ELF32 i386")]
    public void Running_a_foreign_program_says_its_architecture_and_exits_1_issue_17_item_4(string program, string architecture)
    {
        var path = ForeignPrograms.PathOf(program);

        var result = Prochex.Run("run", "--count", "main", "--", path);

        Assert.True(result.ExitCode == 1, result.ToString());
        var refused = program == ForeignPrograms.I386Script && !ForeignPrograms.KernelRunsI386
            ? "Exec format error" // the script's exec fails on a kernel without IA32 emulation; the ELF files are refused before
            : $"unsupported architecture: {architecture}; ProcHex controls x86-64 processes only";
        Assert.Equal([$"prochex: failed to execute {path}: {refused}"], result.StderrLines);
    }

    [Theory]
    [InlineData("attach")]
    [InlineData("inspect")]
    public void Attaching_to_an_i386_process_says_so_and_leaves_it_running_untraced_issue_17_item_4(string command)
    {
        if (!ForeignPrograms.KernelRunsI386)
        {
            // No i386 process can exist on a kernel without IA32 emulation: its exec fails (the probe's ENOEXEC).
            Assert.Throws<System.ComponentModel.Win32Exception>(() => System.Diagnostics.Process.Start(ForeignPrograms.PathOf(ForeignPrograms.I386)));
            return;
        }

        var victim = Targets.Start(Path.GetFileName(ForeignPrograms.PathOf(ForeignPrograms.I386)));
        try
        {
            var result = Prochex.Run(command, victim.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));

            Assert.True(result.ExitCode == 1, result.ToString());
            Assert.Equal(
                [$"prochex: failed to grab pid {victim.Id}: unsupported architecture: ELF32 i386; ProcHex controls x86-64 processes only"],
                result.StderrLines);
            Assert.Equal("0", Targets.Status(victim.Id, "TracerPid"));
            Assert.StartsWith("S", Targets.Status(victim.Id, "State"), StringComparison.Ordinal);
        }
        finally
        {
            Targets.Kill(victim);
        }
    }

    [Fact]
    public void The_freebsd_backend_off_freebsd_fails_clearly()
    {
        var result = Prochex.Run("--backend", "freebsd", "run", "--", "/bin/true");

        Assert.Equal(1, result.ExitCode);
        var line = Assert.Single(result.StderrLines);
        Assert.StartsWith("prochex: the freebsd backend does not run here", line, StringComparison.Ordinal);
    }

    [Theory]
    [Trait("Issue", "22")]
    [InlineData("attach")]
    [InlineData("inspect")]
    public void Without_permission_the_error_says_what_to_do(string command)
    {
        // pid 1 belongs to root: as root, prochex runs as nobody for this test; otherwise it is denied anyway.
        string[] args = command == "attach" ? [command, "1", "--count", "main"] : [command, "1"];
        var result = Environment.UserName == "root" ? Prochex.RunAs(65534, args) : Prochex.Run(args);

        Assert.True(result.ExitCode == 1, $"exit status {result.ExitCode}; stderr:\n{result.Stderr}");
        var line = Assert.Single(result.StderrLines);
        Assert.StartsWith("prochex: ", line, StringComparison.Ordinal);
        Assert.Contains("CAP_SYS_PTRACE", line, StringComparison.Ordinal);
        if (command == "attach")
        {
            // Issue 22 item 3: the refusal's cause (another user's process) and the one thing that helps with it.
            Assert.Contains("permission denied: pid 1 belongs to uid 0, not to this tracer (uid ", line, StringComparison.Ordinal);
            Assert.EndsWith("(run prochex as root or with CAP_SYS_PTRACE, or as the user the process runs as)", line, StringComparison.Ordinal);
        }
        else
        {
            Assert.Contains("ptrace_scope", line, StringComparison.Ordinal);
        }
    }

    [Fact]
    [Trait("Issue", "22")]
    public void Attaching_to_a_process_another_tracer_holds_names_that_tracer_and_what_to_do()
    {
        // The traced fixture traces its own child and prints the child's pid once the child runs under it.
        var tracer = Targets.StartWithInput("traced");
        var child = int.Parse(tracer.StandardOutput.ReadLine()!, System.Globalization.CultureInfo.InvariantCulture);
        try
        {
            var result = Prochex.Run("attach", child.ToString(System.Globalization.CultureInfo.InvariantCulture), "--count", "work");

            Assert.Equal(1, result.ExitCode);
            Assert.Equal(
                $"prochex: failed to grab pid {child}: already traced by pid {tracer.Id} (a process has one tracer at a time: end or detach pid {tracer.Id} first, or read it without control with prochex inspect)",
                Assert.Single(result.StderrLines));
            Assert.Equal(tracer.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), Targets.Status(child, "TracerPid"));
        }
        finally
        {
            Targets.Signal(child, 9);
            Targets.Kill(tracer);
        }
    }
}
