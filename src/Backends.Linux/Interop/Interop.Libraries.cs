namespace ProcHex.Backends.Linux;

internal static partial class Interop
{
    internal static class Libraries
    {
        /// <summary>glibc: every native call of the Linux backend goes straight to it, no shim library.</summary>
        internal const string Libc = "libc";
    }
}
