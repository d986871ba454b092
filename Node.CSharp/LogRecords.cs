using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using FormalChat.Protocol;

namespace FormalChat.Node;

/// <summary>
/// The byte format of a room log (docs/REPLICATION.md, "The log on disk"):
/// <c>record = [length: u32 LE][crc32 of payload: u32 LE][payload: length bytes]</c>, the payload
/// one room message as UTF-8 JSON (Wire.encodeRoomMessage). Writing appends records to a buffer;
/// reading stops at the first record that is incomplete or corrupt and says where and why.
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
    public static void Write(IBufferWriter<byte> buffer, RoomMessage message)
    {
        // Encoding.UTF8, not the strict one: a lone surrogate a client managed to send becomes
        // U+FFFD rather than an exception that would stop the node.
        var json = Wire.encodeRoomMessage(message);
        var length = Encoding.UTF8.GetByteCount(json);
        var record = buffer.GetSpan(HeaderBytes + length)[..(HeaderBytes + length)];
        var payload = record[HeaderBytes..];
        Encoding.UTF8.GetBytes(json, payload);
        BinaryPrimitives.WriteUInt32LittleEndian(record, (uint)length);
        BinaryPrimitives.WriteUInt32LittleEndian(record[4..], Crc32.Compute(payload));
        buffer.Advance(record.Length);
    }

    /// <summary>
    /// Reads records from the start of <paramref name="stream"/> until its end or the first record
    /// that is incomplete (a torn write) or corrupt (bad length, checksum, UTF-8 or JSON, or a
    /// message of another room). Keeps the last <paramref name="keepLast"/> messages.
    /// </summary>
    public static LogReadBack ReadAll(Stream stream, string room, int keepLast)
    {
        var kept = new Queue<RoomMessage>();
        var header = new byte[HeaderBytes];
        var payload = new byte[4096];
        long validBytes = 0;
        var records = 0;
        string? stop = null;
        while (stop is null)
        {
            var headerRead = stream.ReadAtLeast(header, HeaderBytes, throwOnEndOfStream: false);
            if (headerRead == 0) break;
            if (headerRead < HeaderBytes)
            {
                stop = $"an incomplete record header ({headerRead} of {HeaderBytes} bytes): a torn write";
                break;
            }
            var length = BinaryPrimitives.ReadUInt32LittleEndian(header);
            var checksum = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4));
            if (length > MaxPayloadBytes)
            {
                stop = $"a record length of {length} bytes, more than any record has";
                break;
            }
            if (payload.Length < length) payload = new byte[Math.Max(length, payload.Length * 2)];
            var body = payload.AsSpan(0, (int)length);
            var bodyRead = stream.ReadAtLeast(body, body.Length, throwOnEndOfStream: false);
            if (bodyRead < body.Length)
            {
                stop = $"an incomplete record ({bodyRead} of {length} payload bytes): a torn write";
                break;
            }
            var decoded = Decode(body, checksum, room);
            if (decoded.Message is not { } message)
            {
                stop = decoded.Problem;
                break;
            }
            kept.Enqueue(message);
            if (kept.Count > keepLast) kept.Dequeue();
            records++;
            validBytes += HeaderBytes + length;
        }
        return new LogReadBack(room, kept.ToList(), records, validBytes, stop);
    }

    private static (RoomMessage? Message, string? Problem) Decode(ReadOnlySpan<byte> body, uint checksum, string room)
    {
        if (Crc32.Compute(body) != checksum) return (null, "a record whose checksum does not match its payload");
        string json;
        try { json = StrictUtf8.GetString(body); }
        catch (DecoderFallbackException) { return (null, "a record whose payload is not UTF-8"); }
        var decoded = Wire.decodeRoomMessage(json);
        if (decoded.IsError) return (null, $"a record that is not a room message ({decoded.ErrorValue.Reason})");
        if (decoded.ResultValue.Room != room) return (null, $"a record of room {decoded.ResultValue.Room}, not {room}");
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
}
