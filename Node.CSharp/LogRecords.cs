using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using FormalChat.Protocol;

namespace FormalChat.Node;

/// <summary>
/// The byte format of a room log (docs/REPLICATION.md, "The log on disk"):
/// <c>record = [length: u32 LE][crc32 of payload: u32 LE][payload: length bytes]</c>, the payload
/// one room message as UTF-8 JSON (Wire.encodeRoomMessage), checked by CRC-32 (IEEE 802.3, the
/// zlib and PNG one: System.IO.Hashing's). Writing appends records to a buffer;
/// reading skips a damaged record when a valid one frames after it, and stops at damage that has
/// none after it (a torn tail), saying where and why.
/// </summary>
public static class LogRecords
{
    public const int HeaderBytes = 8;

    /// <summary>
    /// A length above this is damage, not a record: a message is far smaller (a frame is at most
    /// 16 MiB), and believing a torn header would allocate whatever it says.
    /// </summary>
    public const int MaxPayloadBytes = 16 * 1024 * 1024;

    // Reading refuses bytes that are not UTF-8: with a matching checksum that means a writer bug,
    // and a record it cannot trust is where the log ends.
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Appends one record for <paramref name="message"/> to <paramref name="buffer"/>.</summary>
    public static void Write(IBufferWriter<byte> buffer, RoomMessage message) => Write(buffer, message, new Wire.FrameWriter());

    /// <summary>As above, encoding with <paramref name="frames"/> (the log's own, kept between records).</summary>
    public static void Write(IBufferWriter<byte> buffer, RoomMessage message, Wire.FrameWriter frames)
    {
        // The writer encodes strings to UTF-8 itself: a lone surrogate a client managed to send
        // becomes U+FFFD rather than an exception that would stop the node.
        var payload = frames.RoomMessage(message);
        var record = buffer.GetSpan(HeaderBytes + payload.Length)[..(HeaderBytes + payload.Length)];
        payload.CopyTo(record[HeaderBytes..]);
        BinaryPrimitives.WriteUInt32LittleEndian(record, (uint)payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(record[4..], Crc32.HashToUInt32(payload));
        buffer.Advance(record.Length);
    }

    /// <summary>
    /// Reads every record of <paramref name="stream"/> and keeps the last <paramref name="keepLast"/>
    /// messages. A record that is corrupt (bad length, checksum, UTF-8 or JSON, a message of another
    /// room, or a seq not after the one before it) or incomplete is skipped when a valid record
    /// can still be framed after it: the reader resynchronises on the next offset where a whole
    /// record frames and checks, and reports the stretch it skipped (<see cref="LogReadBack.Damaged"/>).
    /// Only damage with no valid record after it is a torn tail: <see cref="LogReadBack.ValidBytes"/>
    /// ends before it and <see cref="LogReadBack.StoppedBecause"/> says why.
    /// </summary>
    /// <remarks>
    /// The file is read whole: resynchronising means trying every offset after the damage, and a
    /// room log is small next to memory (a node keeps the last Rooms.historyCapacity messages anyway).
    /// Why a resync cannot easily be fooled: an offset is taken for a record only if its length
    /// fits in the file, the CRC-32 of the next `length` bytes equals the 4 bytes before them, and
    /// those bytes are strict UTF-8 JSON of a room message of this room with a seq after the last
    /// one kept. Bytes inside a payload (JSON text) that happen to look like a plausible length
    /// still pass the CRC only by chance, 1 in 2^32 per offset tried, and then must also decode as a
    /// message of this room in order: a false record in a log of millions of bytes is negligible.
    /// </remarks>
    public static LogReadBack ReadAll(Stream stream, string room, int keepLast)
    {
        var bytes = ReadToEnd(stream);
        var kept = new Queue<RoomMessage>();
        var damaged = new List<DamagedStretch>();
        long validBytes = 0;
        var records = 0;
        long lastSeq = 0;
        string? stop = null;
        var offset = 0;
        while (offset < bytes.Length)
        {
            var (message, size, problem) = TryRecord(bytes, offset, room, lastSeq);
            if (message is not null)
            {
                Keep(message);
                offset += size;
                validBytes = offset;
                continue;
            }
            // Damage at `offset`: the next offset where a whole, valid record starts, if any.
            var next = -1;
            RoomMessage? found = null;
            var foundSize = 0;
            for (var candidate = offset + 1; candidate + HeaderBytes <= bytes.Length; candidate++)
            {
                var (resynced, resyncedSize, _) = TryRecord(bytes, candidate, room, lastSeq);
                if (resynced is null) continue;
                (next, found, foundSize) = (candidate, resynced, resyncedSize);
                break;
            }
            if (found is null)
            {
                stop = problem;
                break;
            }
            damaged.Add(new DamagedStretch(offset, next - offset, lastSeq, found.Seq, problem!));
            Keep(found);
            offset = next + foundSize;
            validBytes = offset;
        }
        return new LogReadBack(room, kept.ToList(), records, validBytes, stop) { Damaged = damaged };

        void Keep(RoomMessage message)
        {
            kept.Enqueue(message);
            if (kept.Count > keepLast) kept.Dequeue();
            records++;
            lastSeq = message.Seq;
        }
    }

    private static byte[] ReadToEnd(Stream stream)
    {
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    /// <summary>The record at <paramref name="offset"/> if one frames and checks there, with its size; else why not.</summary>
    private static (RoomMessage? Message, int Size, string Problem) TryRecord(byte[] bytes, int offset, string room, long lastSeq)
    {
        var left = bytes.Length - offset;
        if (left < HeaderBytes) return (null, 0, $"an incomplete record header ({left} of {HeaderBytes} bytes): a torn write");
        var length = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset));
        var checksum = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset + 4));
        if (length > MaxPayloadBytes) return (null, 0, $"a record length of {length} bytes, more than any record has");
        if (length > left - HeaderBytes) return (null, 0, $"an incomplete record ({left - HeaderBytes} of {length} payload bytes): a torn write");
        var decoded = Decode(bytes.AsSpan(offset + HeaderBytes, (int)length), checksum, room);
        if (decoded.Message is not { } message) return (null, 0, decoded.Problem!);
        // Seqs only grow in a log; an older one here is no record of this log's order.
        if (message.Seq <= lastSeq) return (null, 0, $"a record of seq {message.Seq}, not after seq {lastSeq}");
        return (message, HeaderBytes + (int)length, "");
    }

    private static (RoomMessage? Message, string? Problem) Decode(ReadOnlySpan<byte> body, uint checksum, string room)
    {
        if (Crc32.HashToUInt32(body) != checksum) return (null, "a record whose checksum does not match its payload");
        string json;
        try { json = StrictUtf8.GetString(body); }
        catch (DecoderFallbackException) { return (null, "a record whose payload is not UTF-8"); }
        var decoded = Wire.decodeRoomMessage(json);
        if (decoded.IsError) return (null, $"a record that is not a room message ({decoded.ErrorValue.Reason})");
        if (decoded.ResultValue.Room.Value != room) return (null, $"a record of room {decoded.ResultValue.Room}, not {room}");
        return (decoded.ResultValue, null);
    }
}

/// <summary>
/// What reading a room log back found: the messages kept (oldest first), how many whole records
/// there were, the length of the file up to the end of the last whole record, and, when reading
/// stopped before the end of the file, why.
/// </summary>
public sealed record LogReadBack(string Room, IReadOnlyList<RoomMessage> Messages, int Records, long ValidBytes, string? StoppedBecause)
{
    public long LastSeq => Messages.Count == 0 ? 0 : Messages[^1].Seq;

    /// <summary>Damaged stretches in the middle of the log that were skipped, in file order.</summary>
    public IReadOnlyList<DamagedStretch> Damaged { get; init; } = [];
}

/// <summary>
/// A skipped stretch of a log: where it starts, how long it is, why its first record was refused,
/// and the seqs around it. The seqs missing, as far as the log can tell, are
/// <see cref="LastSeqBefore"/>+1 to <see cref="FirstSeqAfter"/>-1 (none when they follow on: the
/// damage hit bytes that were no record, or a record that was written twice).
/// </summary>
public sealed record DamagedStretch(long Offset, long Bytes, long LastSeqBefore, long FirstSeqAfter, string Reason)
{
    public string MissingSeqs => FirstSeqAfter - LastSeqBefore <= 1 ? "none" : $"{LastSeqBefore + 1}..{FirstSeqAfter - 1}";
}
