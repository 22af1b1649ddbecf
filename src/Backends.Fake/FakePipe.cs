using System.Text;

namespace ProcHex.Backends.Fake;

/// <summary>
/// The tracer's end of a fake victim's piped standard descriptor (issue 22 item 1). An output pipe is filled by the
/// victim's <see cref="FakeStep.Describe"/> steps and ends (reads return 0) when the victim dies; an input pipe takes
/// what the client writes (no fake program reads it). No kernel buffer limit is modelled: a fake victim never blocks
/// on a full pipe.
/// </summary>
/// <remarks>
/// <see cref="ReadAsync(Memory{byte}, CancellationToken)"/> waits for the victim; a synchronous read of an empty open
/// pipe would block the deterministic scheduler's only thread, so it throws instead.
/// </remarks>
internal sealed class FakePipe : Stream
{
    private readonly object _gate = new();
    private readonly Queue<byte> _buffer = new();
    private readonly bool _input;
    private TaskCompletionSource? _waiting;
    private bool _ended;
    private bool _disposed;

    public FakePipe(bool input) => _input = input;

    public override bool CanRead => !_input && !_disposed;

    public override bool CanWrite => _input && !_disposed;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    /// <summary>The victim writes (output pipes).</summary>
    public void Append(string text)
    {
        TaskCompletionSource? wake;
        lock (_gate)
        {
            foreach (var b in Encoding.UTF8.GetBytes(text))
            {
                _buffer.Enqueue(b);
            }

            (wake, _waiting) = (_waiting, null);
        }

        wake?.TrySetResult();
    }

    /// <summary>The victim died: its end is closed, readers see end of file once the buffer is drained.</summary>
    public void End()
    {
        TaskCompletionSource? wake;
        lock (_gate)
        {
            _ended = true;
            (wake, _waiting) = (_waiting, null);
        }

        wake?.TrySetResult();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        lock (_gate)
        {
            return TryTake(buffer, out var read)
                ? read
                : throw new InvalidOperationException("the fake victim has not written yet: a synchronous read would block the deterministic scheduler; use ReadAsync");
        }
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            Task wait;
            lock (_gate)
            {
                if (TryTake(buffer.Span, out var read))
                {
                    return read;
                }

                _waiting ??= new TaskCompletionSource();
                wait = _waiting.Task;
            }

            await wait.WaitAsync(cancellationToken);
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_input)
        {
            throw new NotSupportedException("the victim's output is read, not written");
        }
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        _disposed = true;
        End();
        base.Dispose(disposing);
    }

    /// <summary>Under the gate: false when nothing is buffered and the victim may still write.</summary>
    private bool TryTake(Span<byte> destination, out int read)
    {
        read = 0;
        if (_input)
        {
            throw new NotSupportedException("the victim's input is written, not read");
        }

        while (read < destination.Length && _buffer.TryDequeue(out var b))
        {
            destination[read++] = b;
        }

        return read > 0 || _ended || destination.Length == 0;
    }
}
