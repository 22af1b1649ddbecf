using System.Globalization;

namespace ProcHex.Scenarios;

/// <summary>
/// What a scenario saw, in words that do not depend on the backend: pids become P1, P2... in order of first
/// appearance, so the same scenario yields the same trace on the fake and on a real kernel.
/// </summary>
public sealed class ScenarioTrace
{
    private readonly List<string> _lines = [];
    private readonly Dictionary<int, string> _names = [];
    private readonly Lock _gate = new();

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_gate)
            {
                return [.. _lines];
            }
        }
    }

    public void Add(FormattableString line)
    {
        ArgumentNullException.ThrowIfNull(line);
        lock (_gate)
        {
            _lines.Add(line.ToString(CultureInfo.InvariantCulture));
        }
    }

    /// <summary>The stable name of <paramref name="pid"/> in this trace.</summary>
    public string Name(int pid)
    {
        lock (_gate)
        {
            if (!_names.TryGetValue(pid, out var name))
            {
                name = $"P{_names.Count + 1}";
                _names.Add(pid, name);
            }

            return name;
        }
    }

    public void Handle(string what, ProcessHandle handle)
    {
        ArgumentNullException.ThrowIfNull(handle);
        Add($"{what} {Name(handle.Pid)}: {handle.State}");
    }

    public void Notification(VictimNotification? notification)
    {
        if (notification is null)
        {
            Add($"no notification");
            return;
        }

        var exit = notification.Exit is { } status
            ? status.Signal != 0 ? $" killed by signal {status.Signal}" : $" exit status {status.Code}"
            : string.Empty;
        Add($"notified {Name(notification.Pid)}: {notification.Kind}{exit}");
    }

    public override string ToString() => string.Join(Environment.NewLine, Lines);
}
