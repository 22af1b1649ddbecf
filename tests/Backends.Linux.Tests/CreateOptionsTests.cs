using System.Globalization;
using System.Text;
using ProcHex.Ports;
using ProcHex.Backends.Linux.Tests.Support;

namespace ProcHex.Backends.Linux.Tests;

/// <summary>
/// Issue 22 item 1: create options on real processes (the "stdio" fixture): working directory, stdin/stdout/stderr to
/// files, /dev/null and pipes read through the handle's streams, ASLR off, resource limits, argv[0], each failure,
/// and a victim that fills a pipe nobody reads.
/// </summary>
[Trait("Backend", "Linux")]
[Trait("Issue", "22")]
public sealed class CreateOptionsTests : LinuxTestBase
{
    private static readonly string Program = FixturePrograms.PathOf("stdio");

    private static ProcHexSession NewSession() => new(new LinuxTracer(TestLog.Factory), new ProcHexOptions(), TestLog.Factory);

    private static string Scratch(string name)
    {
        var dir = Path.Combine(FixturePrograms.Dir, $"opts-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return Path.Combine(dir, name);
    }

    /// <summary>Creates the fixture doing <paramref name="what"/>, runs it to its end and returns its exit code.</summary>
    private static async Task<int> RunToEnd(ProcHexSession session, CreateOptions options, params string[] what)
    {
        var handle = await session.CreateAsync(Program, [Program, .. what], options, Timeout());
        return await Finish(session, handle);
    }

    private static async Task<int> Finish(ProcHexSession session, ProcessHandle handle)
    {
        session.Continue(handle);
        var note = await session.WaitForNotificationAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(NotificationKind.Exited, note!.Kind);
        return note.Exit!.Value.Code;
    }

    /// <summary>Creates with stdout piped, reads it to its end while the victim runs, and returns it.</summary>
    private static async Task<string> Output(ProcHexSession session, CreateOptions options, params string[] what)
    {
        var handle = await session.CreateAsync(Program, [Program, .. what], options with { StandardOutput = StdioTarget.Pipe }, Timeout());
        var text = new StreamReader(handle.StandardOutput!).ReadToEndAsync();
        Assert.Equal(0, await Finish(session, handle));
        var output = await text;
        await session.ReleaseAsync(handle);
        return output;
    }

    [Fact]
    public async Task Item1_the_working_directory_is_honoured()
    {
        await using var session = NewSession();
        var dir = Path.GetDirectoryName(Scratch("x"))!;
        Assert.Equal(dir + "\n", await Output(session, new CreateOptions { WorkingDirectory = dir }, "cwd"));
    }

    [Fact]
    public async Task Item1_a_relative_program_path_is_found_where_the_tracer_is_not_in_the_new_directory()
    {
        await using var session = NewSession();
        var dir = Path.GetDirectoryName(Scratch("x"))!;
        var relative = Path.GetRelativePath(Environment.CurrentDirectory, Program);
        var handle = await session.CreateAsync(relative, [relative, "cwd"], new CreateOptions { WorkingDirectory = dir, StandardOutput = StdioTarget.Pipe }, Timeout());
        var text = new StreamReader(handle.StandardOutput!).ReadToEndAsync();
        Assert.Equal(0, await Finish(session, handle));
        Assert.Equal(dir + "\n", await text);
    }

    [Fact]
    public async Task Item1_stdout_and_stderr_go_to_files_truncated_or_appended()
    {
        await using var session = NewSession();
        var output = Scratch("out");
        var error = Path.Combine(Path.GetDirectoryName(output)!, "err");
        await File.WriteAllTextAsync(output, "old output that is truncated\n");
        await File.WriteAllTextAsync(error, "kept\n");
        var options = new CreateOptions { StandardOutput = StdioTarget.File(output), StandardError = StdioTarget.File(error, append: true) };
        Assert.Equal(0, await RunToEnd(session, options, "both"));
        Assert.Equal("out\n", await File.ReadAllTextAsync(output));
        Assert.Equal("kept\nerr\n", await File.ReadAllTextAsync(error));
    }

    [Fact]
    public async Task Item1_stdout_and_stderr_piped_are_read_through_the_handle_streams()
    {
        await using var session = NewSession();
        var options = new CreateOptions { StandardOutput = StdioTarget.Pipe, StandardError = StdioTarget.Pipe };
        var handle = await session.CreateAsync(Program, [Program, "both"], options, Timeout());
        Assert.Null(handle.StandardInput);
        var output = new StreamReader(handle.StandardOutput!).ReadToEndAsync();
        var error = new StreamReader(handle.StandardError!).ReadToEndAsync();
        Assert.Equal(0, await Finish(session, handle));
        Assert.Equal("out\n", await output);
        Assert.Equal("err\n", await error);

        // Owned by the handle: closed once it is let go.
        var stream = handle.StandardOutput!;
        await session.ReleaseAsync(handle);
        Assert.False(stream.CanRead);
    }

    [Fact]
    public async Task Item1_stdin_comes_from_a_file_or_from_the_handle_stream()
    {
        await using var session = NewSession();
        var input = Scratch("in");
        await File.WriteAllTextAsync(input, "from a file\n");
        Assert.Equal("from a file\n", await Output(session, new CreateOptions { StandardInput = StdioTarget.File(input) }, "echo"));

        var handle = await session.CreateAsync(Program, [Program, "echo"], new CreateOptions { StandardInput = StdioTarget.Pipe, StandardOutput = StdioTarget.Pipe }, Timeout());
        var output = new StreamReader(handle.StandardOutput!).ReadToEndAsync();
        await handle.StandardInput!.WriteAsync(Encoding.UTF8.GetBytes("through the pipe\n"));
        await handle.StandardInput.DisposeAsync();
        Assert.Equal(0, await Finish(session, handle));
        Assert.Equal("through the pipe\n", await output);
    }

    [Fact]
    public async Task Item1_dev_null_reads_empty_and_swallows_writes()
    {
        await using var session = NewSession();
        Assert.Equal(string.Empty, await Output(session, new CreateOptions { StandardInput = StdioTarget.Null }, "echo"));

        var handle = await session.CreateAsync(Program, [Program, "both"], new CreateOptions { StandardOutput = StdioTarget.Null, StandardError = StdioTarget.Pipe }, Timeout());
        Assert.Null(handle.StandardOutput);
        var error = new StreamReader(handle.StandardError!).ReadToEndAsync();
        Assert.Equal(0, await Finish(session, handle));
        Assert.Equal("err\n", await error);
    }

    [Fact]
    public async Task Item1_argv0_is_distinct_from_the_file()
    {
        await using var session = NewSession();
        Assert.Equal("not-the-file-name\n", await Output(session, new CreateOptions { Argv0 = "not-the-file-name" }, "argv0"));
    }

    [Fact]
    public async Task Item1_resource_limits_are_set_before_the_program_runs()
    {
        await using var session = NewSession();
        var limits = new Dictionary<ResourceLimit, ResourceLimitValue>
        {
            [ResourceLimit.CoreFileSize] = ResourceLimitValue.Both(0),
            [ResourceLimit.OpenFiles] = new(64, 128),
        };
        Assert.Equal("core 0 0 nofile 64 128\n", await Output(session, new CreateOptions { ResourceLimits = limits }, "limits"));
    }

    [Fact]
    public async Task Item1_a_refused_limit_fails_the_create_and_leaves_nothing_behind()
    {
        await using var session = NewSession();
        var before = Observe.ZombieChildren().Count;
        var options = new CreateOptions { ResourceLimits = new Dictionary<ResourceLimit, ResourceLimitValue> { [ResourceLimit.OpenFiles] = new(128, 64) } };
        var e = await Assert.ThrowsAsync<CreateFailedException>(() => session.CreateAsync(Program, [Program, "limits"], options, Timeout()));
        Assert.Equal(TracerErrorKind.InvalidArgument, e.Kind);
        Assert.EndsWith("cannot set the OpenFiles limit to soft 128, hard 64: Invalid argument", e.Message, StringComparison.Ordinal);
        Assert.Empty(session.Handles);
        Assert.True(await Observe.Eventually(() => Observe.ZombieChildren().Count <= before));
    }

    [Fact]
    public async Task Item1_aslr_off_gives_the_same_layout_each_run_and_the_tracer_later_children_are_randomized_again()
    {
        await using var session = NewSession();
        var fixedLayout = new CreateOptions { DisableAslr = true };
        var first = await Output(session, fixedLayout, "layout");
        var second = await Output(session, fixedLayout, "layout");
        Assert.Equal(first, second);

        // The persona was set on the owner thread only for the spawn: the next plain creates are randomized.
        var handle = await session.CreateAsync(Program, [Program, "layout"], new CreateOptions { StandardOutput = StdioTarget.Pipe }, Timeout());
        Assert.Equal(0u, Personality(handle.Pid) & 0x0040000);
        var randomized = new StreamReader(handle.StandardOutput!).ReadToEndAsync();
        Assert.Equal(0, await Finish(session, handle));
        var again = await Output(session, new CreateOptions(), "layout");
        Assert.NotEqual(first, await randomized);
        Assert.NotEqual(await randomized, again);

        var unrandomized = await session.CreateAsync(Program, [Program, "layout"], fixedLayout, Timeout());
        Assert.Equal(0x0040000u, Personality(unrandomized.Pid) & 0x0040000);
        Assert.Equal(0u, Personality(Environment.ProcessId) & 0x0040000);
    }

    private static uint Personality(int pid) => uint.Parse(File.ReadAllText($"/proc/{pid}/personality").Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    [Fact]
    public async Task Item1_a_missing_working_directory_fails_with_not_found_and_leaves_no_descriptor_open()
    {
        await using var session = NewSession();
        var input = Scratch("in-missing-dir");
        await File.WriteAllTextAsync(input, "x");
        var missing = Path.Combine(Path.GetDirectoryName(input)!, "no-such-dir");
        var options = new CreateOptions { WorkingDirectory = missing, StandardInput = StdioTarget.File(input), StandardOutput = StdioTarget.Pipe };
        var e = await Assert.ThrowsAsync<CreateFailedException>(() => session.CreateAsync(Program, [Program, "cwd"], options, Timeout()));
        Assert.Equal(TracerErrorKind.NotFound, e.Kind);
        Assert.EndsWith($"cannot use working directory {missing}: No such file or directory", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(input, OurDescriptors());
    }

    [Fact]
    public async Task Item1_a_working_directory_that_is_a_file_fails_in_the_spawn_with_no_child_left()
    {
        await using var session = NewSession();
        var input = Scratch("in-file-dir");
        await File.WriteAllTextAsync(input, "x");
        var before = Observe.ZombieChildren().Count;

        // An executable file passes access(X_OK); the chdir of posix_spawn's file actions fails in the child.
        var options = new CreateOptions { WorkingDirectory = Program, StandardInput = StdioTarget.File(input) };
        var e = await Assert.ThrowsAsync<CreateFailedException>(() => session.CreateAsync(Program, [Program, "cwd"], options, Timeout()));
        Assert.Equal(TracerErrorKind.NotFound, e.Kind);
        Assert.EndsWith($"cannot use working directory {Program}: Not a directory", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(input, OurDescriptors());
        Assert.True(await Observe.Eventually(() => Observe.ZombieChildren().Count <= before));
    }

    [Theory]
    [InlineData("missing-dir")]
    [InlineData("directory")]
    public async Task Item1_an_output_file_that_cannot_be_written_fails_naming_it(string kind)
    {
        await using var session = NewSession();
        var input = Scratch("in-" + kind);
        await File.WriteAllTextAsync(input, "x");
        var dir = Path.GetDirectoryName(input)!;
        var output = kind == "directory" ? dir : Path.Combine(dir, "no-such-dir", "out");
        var options = new CreateOptions { StandardInput = StdioTarget.File(input), StandardError = StdioTarget.File(output) };
        var e = await Assert.ThrowsAsync<CreateFailedException>(() => session.CreateAsync(Program, [Program, "both"], options, Timeout()));
        var (reason, errorKind) = kind == "directory" ? ("Is a directory", TracerErrorKind.InvalidArgument) : ("No such file or directory", TracerErrorKind.NotFound);
        Assert.EndsWith($"cannot open {output} for standard error: {reason}", e.Message, StringComparison.Ordinal);
        Assert.Equal(errorKind, e.Kind);
        Assert.DoesNotContain(input, OurDescriptors());
    }

    [Fact]
    public async Task Item1_a_missing_input_file_fails_with_not_found()
    {
        await using var session = NewSession();
        var input = Scratch("absent");
        var e = await Assert.ThrowsAsync<CreateFailedException>(() => session.CreateAsync(Program, [Program, "echo"], new CreateOptions { StandardInput = StdioTarget.File(input) }, Timeout()));
        Assert.Equal(TracerErrorKind.NotFound, e.Kind);
        Assert.EndsWith($"cannot open {input} for standard input: No such file or directory", e.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// A victim whose thread writes 1 MiB into a pipe nobody reads blocks in write(2); the tracer still answers its
    /// breakpoints (100 hits of work() on the other thread), and letting it go (release, or the session's disposal)
    /// kills it rather than waiting for the pipe.
    /// </summary>
    [Theory]
    [InlineData("release")]
    [InlineData("dispose")]
    public async Task Item1_a_victim_blocked_on_a_full_pipe_nobody_reads_never_blocks_the_tracer(string letGo)
    {
        var session = NewSession();
        try
        {
            var handle = await session.CreateAsync(Program, [Program, "flood", "1048576"], new CreateOptions { StandardOutput = StdioTarget.Pipe }, Timeout());
            var pid = handle.Pid;
            var hundred = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var hits = 0;
            await session.SetBreakpointAsync(handle, "a.out`work", _ =>
            {
                if (++hits == 100)
                {
                    hundred.SetResult();
                }
            });
            session.Continue(handle);
            await hundred.Task.WaitAsync(Timeout());
            Assert.True(await Observe.Eventually(() => BlockedInWrite(pid), 30_000), "the flooding thread never blocked in write(2)");

            var stream = handle.StandardOutput!;
            if (letGo == "release")
            {
                await session.ReleaseAsync(handle).WaitAsync(Timeout());
            }
            else
            {
                await session.DisposeAsync().AsTask().WaitAsync(Timeout());
            }

            Assert.True(await Observe.Eventually(() => Observe.State(pid) is null));
            Assert.False(stream.CanRead);
            Assert.Equal(100, hits);
        }
        finally
        {
            await session.DisposeAsync();
        }
    }

    [Fact]
    public async Task Item1_a_reader_gets_all_of_a_megabyte_written_into_a_pipe()
    {
        await using var session = NewSession();
        var handle = await session.CreateAsync(Program, [Program, "flood", "1048576"], new CreateOptions { StandardOutput = StdioTarget.Pipe }, Timeout());
        var hits = 0;
        await session.SetBreakpointAsync(handle, "a.out`work", _ => hits++);
        var copy = new MemoryStream();
        var reading = handle.StandardOutput!.CopyToAsync(copy);
        Assert.Equal(0, await Finish(session, handle));
        await reading;
        Assert.Equal(1048576, copy.Length);
        Assert.All(copy.ToArray(), b => Assert.Equal((byte)'x', b));
        Assert.Equal(100, hits);
    }

    /// <summary>Some thread of <paramref name="pid"/> sleeps in write(2) (syscall 1 on x86-64).</summary>
    private static bool BlockedInWrite(int pid)
    {
        foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
        {
            try
            {
                if (File.ReadAllText(Path.Combine(task, "syscall")).StartsWith("1 ", StringComparison.Ordinal))
                {
                    return true;
                }
            }
            catch (IOException)
            {
            }
        }

        return false;
    }

    /// <summary>What this test process's descriptors name now.</summary>
    private static List<string> OurDescriptors()
    {
        var names = new List<string>();
        foreach (var fd in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget is { } target)
                {
                    names.Add(target);
                }
            }
            catch (IOException)
            {
            }
        }

        return names;
    }
}
