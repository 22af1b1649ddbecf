using System.Globalization;

namespace ProcHex.Tests.Support;

/// <summary>
/// Starts a fixture untraced, for grab tests, as a grandchild: a shell backgrounds it and exits, so init adopts
/// it. Grabbing a child of this very process cannot work (the runtime's Process.Start reaping would steal the
/// ptrace stops), and the backend refuses to.
/// </summary>
internal sealed class Untraced : IDisposable
{
    private Untraced(int id) => Id = id;

    public int Id { get; }

    public static Untraced Start(string program, params string[] args)
    {
        var command = string.Join(' ', new[] { FixturePrograms.PathOf(program) }.Concat(args).Select(a => $"'{a}'"));
        var output = FixturePrograms.Run("/bin/sh", "-c", $"{command} </dev/null >/dev/null 2>&1 & echo $!");
        return new Untraced(int.Parse(output.Trim(), CultureInfo.InvariantCulture));
    }

    public void Kill()
    {
        _ = LinuxTestBase.Kill(Id, 9);
    }

    public async Task WaitForExitAsync() => await Observe.Eventually(() => Observe.State(Id) is null or 'Z');

    public void Dispose() => Kill();
}
