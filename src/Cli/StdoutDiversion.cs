using System.Runtime.InteropServices;
using System.Text;

namespace ProcHex.Cli;

/// <summary>
/// For <c>--json</c>: keeps a private copy of stdout for the JSON lines and points file descriptor 1 at stderr, so
/// a victim that inherits our stdout writes its own output to stderr and stdout carries nothing but JSON.
/// </summary>
internal static partial class StdoutDiversion
{
    public static TextWriter Divert()
    {
        if (!(OperatingSystem.IsLinux() || OperatingSystem.IsFreeBSD() || OperatingSystem.IsMacOS()))
        {
            return Console.Out;
        }

        Console.Out.Flush();
        var copy = Dup(1);
        if (copy < 0 || Dup2(2, 1) < 0)
        {
            return Console.Out;
        }

        return new StreamWriter(new DescriptorStream(copy), new UTF8Encoding(encoderShouldEmitUTF8Identifier: false)) { AutoFlush = true, NewLine = "\n" };
    }

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static unsafe partial nint Write(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "dup", SetLastError = true)]
    private static partial int Dup(int fd);

    [LibraryImport("libc", EntryPoint = "dup2", SetLastError = true)]
    private static partial int Dup2(int fd, int fd2);

    /// <summary>
    /// Plain write(2) on a descriptor: unlike FileStream it never writes at a position of its own, so it appends
    /// where the shared file offset is (a file the shell opened for us, a pipe, a terminal).
    /// </summary>
    private sealed class DescriptorStream(int fd) : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override unsafe void Write(ReadOnlySpan<byte> buffer)
        {
            const int EINTR = 4;
            fixed (byte* start = buffer)
            {
                var done = 0;
                while (done < buffer.Length)
                {
                    var n = StdoutDiversion.Write(fd, start + done, (nuint)(buffer.Length - done));
                    if (n < 0)
                    {
                        if (Marshal.GetLastPInvokeError() == EINTR)
                        {
                            continue;
                        }

                        throw new IOException($"write to stdout failed: {Marshal.GetLastPInvokeErrorMessage()}");
                    }

                    done += (int)n;
                }
            }
        }
    }
}
