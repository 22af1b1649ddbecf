using System.Text;
using ProcHex.PortContract;
using ProcHex.Ports;
using ProcHex.Backends.Linux.Tests.Support;

namespace ProcHex.Backends.Linux.Tests;

[Trait("Backend", "Linux")]
public sealed class CreateTests : LinuxTestBase
{
    [Fact]
    [Trait("Spec", "S1")]
    public async Task Create_stops_before_the_first_instruction_at_the_dynamic_linker_entry()
    {
        var p = await CreateFile("/bin/true", ["/bin/true"]);

        Assert.EndsWith("/bin/true", Observe.Exe(p.Pid), StringComparison.Ordinal);
        Assert.Equal(Observe.InterpreterEntry(p.Pid), p.ReadRegisters(p.Pid).Rip);
        Assert.Equal('t', Observe.State(p.Pid));
        Assert.NotEqual(0, Observe.TracerPid(p.Pid));

        p.Resume();
        var end = await Next(p);
        Assert.Equal(StopKind.Exited, end.Kind);
        Assert.Equal(ExitStatus.FromCode(0), end.Exit);
    }

    [Fact]
    [Trait("Spec", "S1")]
    public async Task Argv_and_environment_reach_the_program_exactly()
    {
        var output = Path.Combine(FixturePrograms.Dir, $"args-{Guid.NewGuid():N}");
        string[] argv = ["custom argv0", output, "a b", "", "x\ty", "ünï"];
        string[] env = ["A=1", "B=two words", "EMPTY=", "PATH=/nowhere"];
        var p = await CreateFile(FixturePrograms.PathOf("args"), argv, env);
        var end = await new PortDriver(p).RunToEnd();
        Assert.Equal(ExitStatus.FromCode(0), end.Exit);

        var parts = Encoding.UTF8.GetString(File.ReadAllBytes(output)).Split('\0');
        var split = Array.IndexOf(parts, "", argv.Length);
        Assert.Equal(argv, parts[..argv.Length]);
        Assert.Equal(env, parts[(split + 1)..^1]);
    }

    [Fact]
    [Trait("Spec", "S1")]
    public async Task A_null_environment_inherits_ours()
    {
        var output = Path.Combine(FixturePrograms.Dir, $"args-{Guid.NewGuid():N}");
        var p = await CreateFile(FixturePrograms.PathOf("args"), ["args", output]);
        await new PortDriver(p).RunToEnd();
        var text = Encoding.UTF8.GetString(File.ReadAllBytes(output));
        Assert.Contains($"PATH={Environment.GetEnvironmentVariable("PATH")}\0", text, StringComparison.Ordinal);
    }

    [Fact]
    [Trait("Spec", "S1")]
    public async Task A_program_is_found_on_the_path()
    {
        var p = await CreateFile("true", ["true"]);
        Assert.EndsWith("/true", Observe.Exe(p.Pid), StringComparison.Ordinal);
        Assert.Equal(ExitStatus.FromCode(0), (await new PortDriver(p).RunToEnd()).Exit);
    }

    [Fact]
    [Trait("Spec", "S19")]
    public async Task Exit_status_and_death_by_signal_are_reported()
    {
        var exits = await Create("loop", "3", "42");
        Assert.Equal(ExitStatus.FromCode(42), (await new PortDriver(exits).RunToEnd()).Exit);

        var crashes = await Create("crash");
        var end = await new PortDriver(crashes).RunToEnd();
        Assert.Equal(StopKind.Exited, end.Kind);
        Assert.Equal(11, end.Exit.Signal);
    }

    [Theory]
    [Trait("Spec", "S2")]
    [InlineData("missing", "No such file or directory")]
    [InlineData("not-executable", "Permission denied")]
    [InlineData("directory", "Permission denied")]
    [InlineData("bad-interpreter", "bad interpreter: No such file or directory")]
    [InlineData("not-a-program", "Exec format error")]
    [InlineData("elf-without-its-interpreter", "/lib64/ld-linux-x86-64.so.9: bad interpreter: No such file or directory")]
    public async Task Create_failures_say_why(string kind, string reason)
    {
        var dir = Path.Combine(FixturePrograms.Dir, $"bad-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        var file = Path.Combine(dir, kind);
        switch (kind)
        {
            case "not-executable":
                File.WriteAllText(file, "#!/bin/sh\n");
                break;
            case "directory":
                Directory.CreateDirectory(file);
                break;
            case "bad-interpreter":
                File.WriteAllText(file, "#!/no/such/interpreter\n");
                File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.UserWrite);
                break;
            case "elf-without-its-interpreter":
                var image = File.ReadAllBytes(FixturePrograms.PathOf("loop"));
                var interp = System.Text.Encoding.ASCII.GetBytes("/lib64/ld-linux-x86-64.so.2");
                var at = image.AsSpan().IndexOf(interp);
                System.Text.Encoding.ASCII.GetBytes("/lib64/ld-linux-x86-64.so.9").CopyTo(image, at);
                File.WriteAllBytes(file, image);
                File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.UserWrite);
                break;
            case "not-a-program":
                File.WriteAllBytes(file, [1, 2, 3, 4, 5, 6, 7, 8]);
                File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.UserWrite);
                break;
        }

        var before = Observe.ZombieChildren().Count;
        var e = await Assert.ThrowsAsync<ProcessStartException>(() => CreateFile(file, [file]));
        Assert.EndsWith(reason, e.Message, StringComparison.Ordinal);
        Assert.True(await Observe.Eventually(() => Observe.ZombieChildren().Count <= before));
    }

    [Fact]
    [Trait("Spec", "S9")]
    public async Task Kill_release_kills_and_reaps()
    {
        var p = await Create("sleeper");
        p.Resume();
        await Task.Delay(50);
        p.Release(ReleaseMode.Kill);
        Assert.True(await Observe.Eventually(() => Observe.State(p.Pid) is null));
    }
}
