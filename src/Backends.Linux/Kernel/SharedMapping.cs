using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Runtime.CompilerServices;

namespace ProcHex.Backends.Linux;

/// <summary>
/// A victim's file (its counter arena's memfd, through /proc/PID/fd/N) mapped shared into the tracer: the victim's
/// locked increments are visible here at once, and the pages stay ours after the victim execs or dies. The view is
/// pinned for the mapping's life, so a read is one load (and a reference count, so that disposing never pulls the
/// pages from under a read on another thread); after disposal reads answer from the last values.
/// </summary>
internal sealed unsafe class SharedMapping : ISharedMapping
{
    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;
    private byte[] _final = [];

    private SharedMapping(MemoryMappedFile file, MemoryMappedViewAccessor view, int length)
    {
        _file = file;
        _view = view;
        Length = length;
        byte* pointer = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        _base = pointer + view.PointerOffset;
    }

    public int Length { get; }

    /// <summary>Opens and maps <paramref name="path"/> whole; null with the errno when it cannot.</summary>
    public static SharedMapping? Open(string path, out int errno)
    {
        MemoryMappedFile? file = null;
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
            var length = stream.Length;
            if (length is <= 0 or > int.MaxValue)
            {
                errno = Interop.Errno.EINVAL;
                return null;
            }

            file = MemoryMappedFile.CreateFromFile(stream, mapName: null, length, MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: false);
            var view = file.CreateViewAccessor(0, length, MemoryMappedFileAccess.ReadWrite);
            errno = 0;
            return new SharedMapping(file, view, (int)length);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            file?.Dispose();
            errno = e is UnauthorizedAccessException ? Interop.Errno.EACCES : e is FileNotFoundException or DirectoryNotFoundException ? Interop.Errno.ENOENT : Interop.Errno.EIO;
            return null;
        }
    }

    public ulong ReadUInt64(int offset)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(offset, Length - sizeof(ulong));
        var handle = _view.SafeMemoryMappedViewHandle;
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
        }
        catch (ObjectDisposedException)
        {
        }

        if (!added)
        {
            return BinaryPrimitives.ReadUInt64LittleEndian(Volatile.Read(ref _final).AsSpan(offset));
        }

        try
        {
            return Volatile.Read(ref Unsafe.AsRef<ulong>(_base + offset));
        }
        finally
        {
            handle.DangerousRelease();
        }
    }

    /// <summary>
    /// Keeps the last values and unmaps: reads go on, answered from the copy. A read already under way keeps the pages
    /// mapped until it is done (the handle's reference count), so none touches unmapped memory.
    /// </summary>
    public void Dispose()
    {
        lock (_view)
        {
            if (_final.Length != 0)
            {
                return;
            }

            var last = new byte[Length];
            new ReadOnlySpan<byte>(_base, Length).CopyTo(last);
            Volatile.Write(ref _final, last);
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
            _file.Dispose();
        }
    }
}
