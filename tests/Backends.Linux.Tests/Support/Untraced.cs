using System.Globalization;

namespace ProcHex.Backends.Linux.Tests.Support;

/// <summary>
/// Starts a fixture untraced, for grab tests, as a grandchild: a shell backgrounds it and exits, so init adopts
/// it. Grabbing a child of this very process cannot work (the runtime's Process.Start reaping would steal the
/// ptrace stops), and the backend refuses to.
/// </summary>
internal sealed class Untraced : IDisposable
{
    private readonly string? _statusFile;

    private Untraced(int id, string? statusFile = null)
    {
        Id = id;
        _statusFile = statusFile;
    }

    public int Id { get; }

    /// <summary>How a watched victim ended ("exited 0", "killed by signal 5"), or null while it lives.</summary>
    public string? Ending
    {
        get
        {
            if (_statusFile is null || !File.Exists(_statusFile) || File.ReadAllText(_statusFile).Trim() is not { Length: > 0 } status)
            {
                return null;
            }

            var code = int.Parse(status, CultureInfo.InvariantCulture);
            return code > 128 ? $"killed by signal {code - 128}" : $"exited {code}";
        }
    }

    public static Untraced Start(string program, params string[] args)
    {
        var output = FixturePrograms.Run("/bin/sh", "-c", $"{Command(program, args)} </dev/null >/dev/null 2>&1 & echo $!");
        return new Untraced(int.Parse(output.Trim(), CultureInfo.InvariantCulture));
    }

    /// <summary>Like <see cref="Start"/>, for a whole shell command (quoted by the caller); its first process is <see cref="Id"/>.</summary>
    public static Untraced StartCommand(string command)
    {
        var output = FixturePrograms.Run("/bin/sh", "-c", $"{command} </dev/null >/dev/null 2>&1 & echo $!");
        return new Untraced(int.Parse(output.Trim(), CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// Like <see cref="Start"/>, with the file at <paramref name="path"/> run as <paramref name="uid"/> (user and group,
    /// no supplementary groups) through setpriv (util-linux). Root only.
    /// </summary>
    public static Untraced StartAs(int uid, string path, params string[] args)
    {
        var command = string.Join(' ', new[] { "setpriv", $"--reuid={uid}", $"--regid={uid}", "--clear-groups", "--", path }.Concat(args).Select(a => $"'{a}'"));
        var output = FixturePrograms.Run("/bin/sh", "-c", $"{command} </dev/null >/dev/null 2>&1 & echo $!");
        return new Untraced(int.Parse(output.Trim(), CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// Like <see cref="Start"/>, but a shell stays behind as the victim's parent and writes down how it ended
    /// (<see cref="Ending"/>), for tests whose victim must not die.
    /// </summary>
    public static Untraced StartWatched(string program, params string[] args)
    {
        var statusFile = Path.Combine(FixturePrograms.Dir, $"ending-{Guid.NewGuid():N}");
        var watcher = $"( {Command(program, args)} </dev/null >/dev/null 2>&1 & echo $!; exec >/dev/null 2>&1; wait $!; echo $? >'{statusFile}' ) &";
        var output = FixturePrograms.Run("/bin/sh", "-c", watcher);
        return new Untraced(int.Parse(output.Trim(), CultureInfo.InvariantCulture), statusFile);
    }

    /// <summary>
    /// Like <see cref="StartWatched"/>, with standard input read from the FIFO <paramref name="input"/> (made here: the
    /// test opens it for writing to feed the victim; the victim opens it read-write, so neither open waits for the other)
    /// and standard output written to the file <paramref name="output"/>.
    /// </summary>
    public static Untraced StartWatchedWithInput(string program, string input, string output, params string[] args)
    {
        FixturePrograms.Run("mkfifo", input);
        var statusFile = Path.Combine(FixturePrograms.Dir, $"ending-{Guid.NewGuid():N}");
        var watcher = $"( {Command(program, args)} <>'{input}' >'{output}' 2>/dev/null & echo $!; exec >/dev/null 2>&1; wait $!; echo $? >'{statusFile}' ) &";
        var pid = FixturePrograms.Run("/bin/sh", "-c", watcher);
        return new Untraced(int.Parse(pid.Trim(), CultureInfo.InvariantCulture), statusFile);
    }

    private static string Command(string program, string[] args) =>
        string.Join(' ', new[] { FixturePrograms.PathOf(program) }.Concat(args).Select(a => $"'{a}'"));

    public void Kill()
    {
        _ = LinuxTestBase.Kill(Id, 9);
    }

    public async Task WaitForExitAsync() => await Observe.Eventually(() => Observe.State(Id) is null or 'Z');

    public void Dispose() => Kill();
}
