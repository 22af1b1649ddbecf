using Microsoft.Extensions.Logging;

namespace ProcHex.Backends.Linux.Tests.Support;

/// <summary>With PROCHEX_TEST_LOG=FILE, every backend log line (trace level included) goes to FILE; for hunting races.</summary>
internal static class TestLog
{
    public static ILoggerFactory? Factory { get; } =
        Environment.GetEnvironmentVariable("PROCHEX_TEST_LOG") is { Length: > 0 } path ? new FileLoggerFactory(path) : null;

    private sealed class FileLoggerFactory(string path) : LineLoggerFactory
    {
        protected override void Write(EventId eventId, string line) =>
            File.AppendAllText(path, $"{DateTime.UtcNow:HH:mm:ss.ffffff} [{Environment.CurrentManagedThreadId}] {line}\n");
    }
}

/// <summary>A logger factory whose every logger hands each line, all levels, to <see cref="Write"/>, one at a time.</summary>
internal abstract class LineLoggerFactory : ILoggerFactory, ILogger
{
    private readonly object _gate = new();

    public void AddProvider(ILoggerProvider provider) { }

    public ILogger CreateLogger(string categoryName) => this;

    public void Dispose() { }

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_gate)
        {
            Write(eventId, exception is null ? formatter(state, exception) : $"{formatter(state, exception)} {exception}");
        }
    }

    protected abstract void Write(EventId eventId, string line);
}

/// <summary>Keeps every line with its event id, for a test that asserts what was logged.</summary>
internal sealed class ListLoggerFactory : LineLoggerFactory
{
    private readonly List<(int Id, string Message)> _entries = [];

    /// <summary>A snapshot of the lines so far.</summary>
    public IReadOnlyList<(int Id, string Message)> Entries
    {
        get
        {
            lock (_entries)
            {
                return [.. _entries];
            }
        }
    }

    protected override void Write(EventId eventId, string line)
    {
        lock (_entries)
        {
            _entries.Add((eventId.Id, line));
        }
    }
}
