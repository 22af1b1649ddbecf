using ProcHex.Backends.Fake;

namespace ProcHex.Simulation;

/// <summary>
/// One seed's history: client operations and the kernel's own log, merged in the order they happened. Equal seeds
/// give equal traces; that is what replay means.
/// </summary>
public sealed class Trace
{
    private readonly List<string> _lines = [];
    private readonly FakeKernel _kernel;
    private int _kernelSeen;

    public Trace(FakeKernel kernel) => _kernel = kernel;

    public IReadOnlyList<string> Lines => _lines;

    /// <summary>Records a client-side event after the kernel lines that precede it.</summary>
    public void Add(string text)
    {
        Flush();
        _lines.Add(text);
    }

    /// <summary>Appends the kernel lines written since the last call.</summary>
    public void Flush()
    {
        var log = _kernel.Log;
        for (var i = _kernelSeen; i < log.Count; i++)
        {
            _lines.Add("    k " + log[i]);
        }

        _kernelSeen = log.Count;
    }
}
