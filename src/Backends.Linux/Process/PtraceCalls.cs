namespace ProcHex.Backends.Linux;

/// <summary>
/// The ptrace requests that must succeed, over the seam: their errno becomes the <see cref="Ports.TracerException"/>
/// the ports promise (ESRCH marked gone).
/// </summary>
internal static class PtraceCalls
{
    /// <summary><paramref name="what"/> names the request for the message.</summary>
    public static void PtraceOrThrow(this ILinuxKernel kernel, int request, int tid, nint address, nint data, string what)
    {
        if (kernel.Ptrace(request, tid, address, data) is var errno and not 0)
        {
            throw Interop.Sys.Failure($"{what} (thread {tid})", errno);
        }
    }

    public static Interop.UserRegs ReadRegs(this ILinuxKernel kernel, int tid) =>
        kernel.GetRegs(tid, out var regs) is var errno and not 0
            ? throw Interop.Sys.Failure($"cannot read the registers of thread {tid}", errno)
            : regs;

    public static void WriteRegs(this ILinuxKernel kernel, int tid, in Interop.UserRegs regs)
    {
        if (kernel.SetRegs(tid, regs) is var errno and not 0)
        {
            throw Interop.Sys.Failure($"cannot write the registers of thread {tid}", errno);
        }
    }
}
