using ProcHex.Ports;

namespace ProcHex.Elf;

/// <summary>
/// An ELF image is truncated, malformed or not one we read (not ELF64 little-endian). The message names the
/// image and the part that is wrong, e.g. "libfoo.so: section header 7 (offset 0x1f00, size 0x40) lies outside the file (0x1f20 bytes)".
/// </summary>
/// <remarks>
/// It derives from <see cref="TracerException"/> because a victim's image is read on behalf of a port call
/// (<see cref="ISymbolTable.Refresh"/>, <see cref="IRtldAgent.ReadEventMessage"/>): the core already turns a
/// <see cref="TracerException"/> from those into a notification instead of losing the control loop, and a corrupt
/// library in a victim is exactly that kind of failure.
/// </remarks>
public class ElfFormatException : TracerException
{
    /// <summary>Creates a <see cref="ElfFormatException"/>: <paramref name="message"/> says what failed and what to do about it.</summary>
    public ElfFormatException(string message) : base(message) { }

    /// <summary>Creates a <see cref="ElfFormatException"/>: <paramref name="message"/> says what failed and what to do about it; <paramref name="innerException"/> is the failure behind it.</summary>
    public ElfFormatException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates a <see cref="ElfFormatException"/> with a generic message; prefer one that says what failed.</summary>
    public ElfFormatException() : this("malformed ELF image") { }
}
