namespace ProcHex;

/// <summary>Tunables of the Linux ptrace backend, set through <c>UseLinux(o => ...)</c>.</summary>
public sealed class LinuxBackendOptions
{
    /// <summary>
    /// Step over a breakpoint by emulating its original instruction when it is a common function opening (one stop
    /// per hit, the trap never leaves the text). Off: every step-over restores the instruction, stops the other
    /// threads and single-steps it out of line (two stops per hit). On by default; turning it off is for
    /// comparing the two paths and for ruling the emulator out when a victim misbehaves.
    /// </summary>
    public bool EmulateStepOver { get; set; } = true;
}
