using ProcHex.Ports;

namespace ProcHex.Backends.Linux;

/// <summary>The <c>int</c> a waitpid call fills in, decoded the way &lt;sys/wait.h&gt; does.</summary>
internal readonly record struct WaitStatus(int Raw)
{
    public bool Exited => (Raw & 0x7f) == 0;

    public bool Signaled => ((sbyte)((Raw & 0x7f) + 1) >> 1) > 0;

    public bool Stopped => (Raw & 0xff) == 0x7f;

    public bool Ended => Exited || Signaled;

    public int ExitCode => (Raw >> 8) & 0xff;

    public int TermSignal => Raw & 0x7f;

    public bool CoreDumped => (Raw & 0x80) != 0;

    public int StopSignal => (Raw >> 8) & 0xff;

    /// <summary>The PTRACE_EVENT_* in the high byte of a ptrace stop, 0 for a plain signal stop.</summary>
    public int Event => (Raw >> 16) & 0xff;

    public ExitStatus ToExitStatus() => Signaled ? ExitStatus.FromSignal(TermSignal, CoreDumped) : ExitStatus.FromCode(ExitCode);

    /// <inheritdoc/>
    public override string ToString() =>
        Exited ? $"exited {ExitCode}" : Signaled ? $"killed by signal {TermSignal}" : Stopped ? $"stopped sig {StopSignal & 0x7f} event {Event}" : $"status 0x{Raw:x}";
}
