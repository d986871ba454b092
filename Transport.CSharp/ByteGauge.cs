namespace FormalChat.Transport;

/// <summary>A running total of bytes, added to from many threads: what waits to be sent on a set
/// of connections together (all clients, all peer links), so their owner can tell it falls behind.</summary>
public sealed class ByteGauge
{
    private long _bytes;

    public long Bytes => Interlocked.Read(ref _bytes);

    public void Add(long bytes) => Interlocked.Add(ref _bytes, bytes);
}
