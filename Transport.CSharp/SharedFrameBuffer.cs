using System.Buffers;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace FormalChat.Transport;

/// <summary>
/// Frames joined into one array rented from <see cref="ArrayPool{T}"/>, queued on many
/// connections at once (a turn's messages to a room's members). Every connection that queues it
/// holds a reference until its write loop has copied the bytes into the pipe, or until it drops
/// them at close (<see cref="FramedConnection"/>); whoever joined the frames holds the first one.
/// The last reference let go returns the array, so a flood's joined runs are no garbage for the
/// collector to copy while they wait on slow receivers.
/// </summary>
public sealed class SharedFrameBuffer : MemoryManager<byte>
{
    private byte[]? _array;
    private readonly int _length;
    private int _references = 1;

    private SharedFrameBuffer(byte[] array, int length)
    {
        _array = array;
        _length = length;
    }

    /// <summary>The frames, in order, in one pooled array. The caller holds the first reference
    /// and lets it go (<see cref="Release()"/>) once it has queued the buffer where it goes.</summary>
    public static SharedFrameBuffer Join(List<ReadOnlyMemory<byte>> frames, int bytes)
    {
        var array = ArrayPool<byte>.Shared.Rent(bytes);
        var at = 0;
        foreach (var frame in frames)
        {
            frame.Span.CopyTo(array.AsSpan(at));
            at += frame.Length;
        }
        Debug.Assert(at == bytes, "the frames add up to the bytes given");
        return new SharedFrameBuffer(array, bytes);
    }

    /// <summary>Holders now: the joiner until it lets go, and each queue the buffer waits in.</summary>
    public int References => Volatile.Read(ref _references);

    /// <summary>One more holder (a connection's queue).</summary>
    public void Retain()
    {
        var references = Interlocked.Increment(ref _references);
        // A buffer whose last holder let go is back in the pool: taking it again is a bug.
        if (references <= 1) throw new InvalidOperationException("a shared frame buffer was retained after its last release");
    }

    /// <summary>A holder is done with the bytes; the last one returns the array to the pool.</summary>
    public void Release()
    {
        var references = Interlocked.Decrement(ref _references);
        if (references > 0) return;
        if (references < 0) throw new InvalidOperationException("a shared frame buffer was released more often than retained");
        if (Interlocked.Exchange(ref _array, null) is { } array) ArrayPool<byte>.Shared.Return(array);
    }

    /// <summary>Takes a reference when <paramref name="frame"/> lies in a shared buffer (plain arrays need none).</summary>
    public static void Retain(ReadOnlyMemory<byte> frame)
    {
        if (MemoryMarshal.TryGetMemoryManager(frame, out SharedFrameBuffer? shared)) shared.Retain();
    }

    /// <summary>Lets go of the reference taken by <see cref="Retain(ReadOnlyMemory{byte})"/>.</summary>
    public static void Release(ReadOnlyMemory<byte> frame)
    {
        if (MemoryMarshal.TryGetMemoryManager(frame, out SharedFrameBuffer? shared)) shared.Release();
    }

    public override Span<byte> GetSpan() =>
        _array is { } array ? array.AsSpan(0, _length) : throw new ObjectDisposedException(nameof(SharedFrameBuffer), "read after its last release");

    /// <summary>Frames are copied into pipes, never handed to the operating system as they are.</summary>
    public override MemoryHandle Pin(int elementIndex = 0) => throw new NotSupportedException("shared frame buffers are copied, not pinned");

    public override void Unpin() { }

    /// <summary>References, not disposal, decide when the array goes back (<see cref="Release()"/>).</summary>
    protected override void Dispose(bool disposing) { }
}
