using ProcHex.Ports;
using System.Buffers.Binary;
using System.Text;

namespace ProcHex.Backends.Linux;

/// <summary>
/// Says why a file cannot be executed before anything is spawned, with the words execve's errno would give, and
/// names the interpreter when it is the interpreter that is missing (execve says ENOENT for both).
/// </summary>
internal static class ExecutableCheck
{
    /// <summary>The path to execute: FILE itself when it has a slash, else the first match on the PATH.</summary>
    /// <exception cref="ProcessStartException">Not found, not executable, or a missing interpreter.</exception>
    /// <exception cref="ForeignArchitectureException">An ELF image that is not x86-64.</exception>
    public static string Resolve(ILinuxKernel kernel, string file, IReadOnlyList<string> environment)
    {
        if (string.IsNullOrEmpty(file))
        {
            throw new ProcessStartException(Interop.Sys.DescribeError(Interop.Errno.ENOENT), TracerErrorKind.NotFound, Interop.Errno.ENOENT);
        }

        var path = file.Contains('/', StringComparison.Ordinal) ? file : SearchPath(file, environment);
        Check(kernel, path);
        return path;
    }

    private static string SearchPath(string file, IReadOnlyList<string> environment)
    {
        var pathVariable = environment.FirstOrDefault(e => e.StartsWith("PATH=", StringComparison.Ordinal))?[5..]
            ?? "/usr/local/bin:/usr/bin:/bin";
        foreach (var dir in pathVariable.Split(':'))
        {
            var candidate = Path.Combine(dir.Length == 0 ? "." : dir, file);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return file;
    }

    private static void Check(ILinuxKernel kernel, string path)
    {
        if (kernel.Access(path, Interop.Sys.X_OK) is var errno and not 0)
        {
            throw new ProcessStartException(Interop.Sys.DescribeError(errno), Interop.Errno.KindOf(errno), errno);
        }

        if (Directory.Exists(path))
        {
            throw new ProcessStartException(Interop.Sys.DescribeError(Interop.Errno.EACCES), TracerErrorKind.PermissionDenied, Interop.Errno.EACCES);
        }

        byte[] head;
        try
        {
            using var stream = File.OpenRead(path);
            head = new byte[4096];
            head = head[..stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false)];
        }
        catch (UnauthorizedAccessException)
        {
            // Execute-only files are fine; the kernel has the last word.
            return;
        }

        ArchitectureCheck.RefuseFile(head);
        var interpreter = Interpreter(head);
        if (interpreter is not null && kernel.Access(interpreter, Interop.Sys.X_OK) is var missing and not 0)
        {
            throw new ProcessStartException($"{interpreter}: bad interpreter: {Interop.Sys.DescribeError(missing)}", Interop.Errno.KindOf(missing), missing);
        }
    }

    /// <summary>The #! interpreter, or an ELF's PT_INTERP when it lies in the first page; else null.</summary>
    internal static string? Interpreter(ReadOnlySpan<byte> head)
    {
        if (head.Length > 2 && head[0] == '#' && head[1] == '!')
        {
            var line = Encoding.UTF8.GetString(head[2..]).Split('\n')[0].Trim();
            var end = line.IndexOfAny([' ', '\t']);
            return end < 0 ? line : line[..end];
        }

        if (head.Length < 64 || !head[..4].SequenceEqual((ReadOnlySpan<byte>)[0x7f, (byte)'E', (byte)'L', (byte)'F']) || head[4] != 2)
        {
            return null;
        }

        var phoff = BinaryPrimitives.ReadUInt64LittleEndian(head[32..]);
        var phentsize = BinaryPrimitives.ReadUInt16LittleEndian(head[54..]);
        var phnum = BinaryPrimitives.ReadUInt16LittleEndian(head[56..]);
        for (var i = 0; i < phnum; i++)
        {
            var at = phoff + ((ulong)i * phentsize);
            if (at + 56 > (ulong)head.Length)
            {
                return null;
            }

            var ph = head[(int)at..];
            if (BinaryPrimitives.ReadUInt32LittleEndian(ph) != 3)
            {
                continue;
            }

            var offset = BinaryPrimitives.ReadUInt64LittleEndian(ph[8..]);
            var size = BinaryPrimitives.ReadUInt64LittleEndian(ph[32..]);
            if (offset + size > (ulong)head.Length || size == 0)
            {
                return null;
            }

            return Encoding.UTF8.GetString(head.Slice((int)offset, (int)size - 1));
        }

        return null;
    }
}
