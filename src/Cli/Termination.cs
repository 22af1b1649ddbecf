using System.Runtime.InteropServices;

namespace ProcHex.Cli;

/// <summary>
/// SIGINT, SIGTERM and SIGHUP do not kill prochex: they cancel <see cref="Token"/> so the command lets its victim
/// go cleanly (a created one killed, a grabbed one released) and then exits 128+N.
/// </summary>
internal sealed class Termination : IDisposable
{
    private readonly CancellationTokenSource _cts = new();
    private readonly List<PosixSignalRegistration> _registrations = [];
    private int _signal;

    public Termination()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        Register(PosixSignal.SIGINT, 2);
        Register(PosixSignal.SIGTERM, 15);
        Register(PosixSignal.SIGHUP, 1);
    }

    public CancellationToken Token => _cts.Token;

    /// <summary>The signal number that arrived first, or 0.</summary>
    public int Signal => Volatile.Read(ref _signal);

    public bool Requested => Signal != 0;

    public void Dispose()
    {
        foreach (var registration in _registrations)
        {
            registration.Dispose();
        }

        _cts.Dispose();
    }

    private void Register(PosixSignal signal, int number) =>
        _registrations.Add(PosixSignalRegistration.Create(signal, context =>
        {
            context.Cancel = true;
            Interlocked.CompareExchange(ref _signal, number, 0);
            try
            {
                _cts.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // Arrived during shutdown: nothing is left to cancel.
            }
        }));
}
