using Microsoft.Extensions.Logging;

namespace ProcHex.Tests.Support;

/// <summary>With PROCHEX_TEST_LOG=FILE, every backend log line (trace level included) goes to FILE; for hunting races.</summary>
internal static class TestLog
{
    public static ILoggerFactory? Factory { get; } =
        Environment.GetEnvironmentVariable("PROCHEX_TEST_LOG") is { Length: > 0 } path ? new FileLoggerFactory(path) : null;

    private sealed class FileLoggerFactory(string path) : ILoggerFactory, ILogger
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
                File.AppendAllText(path, $"{DateTime.UtcNow:HH:mm:ss.ffffff} [{Environment.CurrentManagedThreadId}] {formatter(state, exception)} {exception}\n");
            }
        }
    }
}
