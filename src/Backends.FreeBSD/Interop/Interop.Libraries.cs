internal static partial class Interop
{
    internal static class Libraries
    {
        /// <summary>
        /// The explicit soname. /usr/lib/libc.so is a linker script and cannot be dlopen()ed; on FreeBSD 15 libc.so.7
        /// is an auxiliary filter for libsys.so.7, so the syscall stubs still resolve through it
        /// (freebsd-abi.md section 7: lib/libc/Makefile, lib/libsys/Symbol.sys.map).
        /// </summary>
        internal const string Libc = "libc.so.7";
    }
}
