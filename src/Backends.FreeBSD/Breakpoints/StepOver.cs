using Iced.Intel;

namespace ProcHex.Backends.FreeBSD;

/// <summary>
/// Decides how a thread gets past the instruction a breakpoint replaced. Instructions with no effect but moving
/// RIP (the nop family, endbr64) are emulated: one stop per hit and no window at all. Everything else is
/// single-stepped with every other LWP held by PT_SUSPEND (see <see cref="FreeBsdProcess"/>), which FreeBSD
/// offers per thread where Linux has to stop threads one by one. Emulating more (push, mov to the stack) is
/// deliberately left out until it can be checked against a real single-step on a FreeBSD machine.
/// </summary>
internal static class StepOver
{
    /// <summary>The length to skip when the instruction at the breakpoint can be emulated; 0 when it must be stepped.</summary>
    public static int EmulatedLength(ulong address, ReadOnlySpan<byte> originalText)
    {
        var decoder = Decoder.Create(64, new ByteArrayCodeReader(originalText.ToArray()));
        decoder.IP = address;
        decoder.Decode(out var instruction);
        if (instruction.IsInvalid || instruction.Length > originalText.Length)
        {
            return 0;
        }

        return instruction.Mnemonic is Mnemonic.Nop or Mnemonic.Endbr64 ? instruction.Length : 0;
    }
}
