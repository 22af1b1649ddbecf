using System.Runtime.InteropServices;

namespace ProcHex.Backends.FreeBSD;

/// <summary>The real system calls, through libc.so.7. Constructing it anywhere but on FreeBSD fails at once.</summary>
public sealed class LibcFreeBsdKernel : IFreeBsdKernel
{
    /// <summary>The real FreeBSD kernel, through <c>libc.so.7</c>; throws <see cref="PlatformNotSupportedException"/> on any other OS.</summary>
    public LibcFreeBsdKernel()
    {
        if (!OperatingSystem.IsFreeBSD())
        {
            throw new PlatformNotSupportedException(
                $"The FreeBSD backend needs FreeBSD; this is {RuntimeInformation.OSDescription}. " +
                "Use UseLinux() here, or UseFreeBsd(kernel) with a fake kernel in tests.");
        }
    }

    /// <inheritdoc/>
    public int Ptrace(int request, int pid, nint addr, int data, out int errno)
    {
        // ptrace's libc wrapper clears errno itself; SetLastError clears it before the call as well.
        var result = Interop.Sys.Ptrace(request, pid, addr, data);
        errno = result == -1 ? Marshal.GetLastPInvokeError() : 0;
        return result;
    }

    /// <inheritdoc/>
    public unsafe int WaitPid(int pid, out int status, int options, out int errno)
    {
        int s = 0;
        var result = Interop.Sys.WaitPid(pid, &s, options);
        status = s;
        errno = result == -1 ? Marshal.GetLastPInvokeError() : 0;
        return result;
    }

    /// <inheritdoc/>
    public int Kill(int pid, int signal, out int errno)
    {
        var result = Interop.Sys.Kill(pid, signal);
        errno = result == -1 ? Marshal.GetLastPInvokeError() : 0;
        return result;
    }

    /// <inheritdoc/>
    public int Access(string path, int mode, out int errno)
    {
        var result = Interop.Sys.Access(path, mode);
        errno = result == -1 ? Marshal.GetLastPInvokeError() : 0;
        return result;
    }

    /// <inheritdoc/>
    public int GetPid() => Interop.Sys.GetPid();

    /// <inheritdoc/>
    public int ReadProcMem(int pid, ulong address, Span<byte> buffer, out int errno)
    {
        // Plain file I/O: procfs's mem file is read with pread at the address (sys/fs/procfs/procfs_mem.c).
        try
        {
            using var mem = File.OpenHandle($"/proc/{pid}/mem", FileMode.Open, FileAccess.Read);
            errno = 0;
            return RandomAccess.Read(mem, buffer, (long)address);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            errno = e is FileNotFoundException or DirectoryNotFoundException ? Interop.Errno.ENOENT
                : e is UnauthorizedAccessException ? Interop.Errno.EACCES : Interop.Errno.EIO;
            return -1;
        }
    }

    /// <inheritdoc/>
    public unsafe int Sysctl(ReadOnlySpan<int> mib, Span<byte> buffer, ref nuint oldLength, out int errno)
    {
        fixed (int* name = mib)
        fixed (byte* old = buffer)
        fixed (nuint* length = &oldLength)
        {
            var result = Interop.Sys.Sysctl(name, (uint)mib.Length, buffer.IsEmpty ? null : old, length, null, 0);
            errno = result == -1 ? Marshal.GetLastPInvokeError() : 0;
            return result;
        }
    }

    /// <inheritdoc/>
    public unsafe int PosixSpawn(string path, IReadOnlyList<string> argv, IReadOnlyList<string> environment, out int pid)
    {
        ArgumentNullException.ThrowIfNull(argv);
        ArgumentNullException.ThrowIfNull(environment);
        var strings = new List<nint>(argv.Count + environment.Count);
        var argvBlock = (nint*)NativeMemory.AllocZeroed((nuint)(argv.Count + 1), (nuint)sizeof(nint));
        var envBlock = (nint*)NativeMemory.AllocZeroed((nuint)(environment.Count + 1), (nuint)sizeof(nint));
        nint attributes = 0;
        try
        {
            for (var i = 0; i < argv.Count; i++)
            {
                argvBlock[i] = Marshal.StringToCoTaskMemUTF8(argv[i]);
                strings.Add(argvBlock[i]);
            }

            for (var i = 0; i < environment.Count; i++)
            {
                envBlock[i] = Marshal.StringToCoTaskMemUTF8(environment[i]);
                strings.Add(envBlock[i]);
            }

            var error = Interop.Sys.PosixSpawnAttrInit(&attributes);
            if (error != 0)
            {
                pid = 0;
                return error;
            }

            // SIGPIPE is the signal the runtime sets to SIG_IGN; an ignored disposition survives exec and the
            // victim would not die of a broken pipe as it does outside the tracer. Signal n is bit (n-1)%32 of
            // word (n-1)/32 (sys/sys/_sigset.h).
            Interop.SigSet defaults = default;
            defaults.__bits[(Interop.Signals.SIGPIPE - 1) / 32] |= 1u << ((Interop.Signals.SIGPIPE - 1) % 32);
            Interop.SigSet mask = default;
            _ = Interop.Sys.PosixSpawnAttrSetSigDefault(&attributes, &defaults);
            _ = Interop.Sys.PosixSpawnAttrSetSigMask(&attributes, &mask);
            _ = Interop.Sys.PosixSpawnAttrSetFlags(
                &attributes, (short)(Interop.Sys.POSIX_SPAWN_SETSIGDEF | Interop.Sys.POSIX_SPAWN_SETSIGMASK));

            int child = 0;
            error = Interop.Sys.PosixSpawn(&child, path, 0, &attributes, argvBlock, envBlock);
            pid = child;
            return error;
        }
        finally
        {
            if (attributes != 0)
            {
                _ = Interop.Sys.PosixSpawnAttrDestroy(&attributes);
            }

            foreach (var s in strings)
            {
                Marshal.FreeCoTaskMem(s);
            }

            NativeMemory.Free(argvBlock);
            NativeMemory.Free(envBlock);
        }
    }
}
