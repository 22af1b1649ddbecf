namespace ProcHex.Ports;

/// <summary>How a backend ran the instruction a breakpoint's trap replaced (<see cref="ProcHexMetrics.RecordStepOver"/>).</summary>
public enum StepOverKind
{
    /// <summary>Its effect computed and applied by the tracer: one stop per hit, the trap never leaves the text.</summary>
    Emulated,

    /// <summary>The original instruction put back and single-stepped, the other threads held meanwhile.</summary>
    OutOfLine,
}
