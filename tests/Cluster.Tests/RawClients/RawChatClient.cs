using System.Text;
using System.Text.Json;

namespace FormalChat.Cluster.Tests.RawClients;

/// <summary>
/// A FormalChat client that speaks the NDJSON protocol over a bare socket and hides nothing:
/// unlike Client.CSharp it does not drop duplicates or reorder, so what a node sends is what
/// gets counted. It follows one room: every <c>message</c> frame of that room goes through a
/// <see cref="SeqChecker"/> and then, with its text, to an optional handler.
/// </summary>
public sealed class RawChatClient : RawLineClient
{
    /// <summary>Called on the reader's thread for each message frame of the room, duplicates included.</summary>
    public delegate void MessageHandler(long seq, ReadOnlySpan<byte> text);

    private static readonly TimeSpan HandshakeDeadline = TimeSpan.FromSeconds(30);

    private readonly byte[] _room;
    private readonly byte[] _messagePrefix;
    private readonly MessageHandler? _onMessage;
    private volatile string? _problem;

    private RawChatClient(ConnectedSocket socket, string room, MessageHandler? onMessage) : base(socket)
    {
        Room = room;
        _room = Encoding.UTF8.GetBytes(room);
        _messagePrefix = Encoding.UTF8.GetBytes($"{{\"v\":1,\"type\":\"message\",\"room\":\"{room}\",\"seq\":");
        _onMessage = onMessage;
    }

    public string Room { get; }

    public SeqChecker Seq { get; } = new();

    /// <summary>The last error or redirect frame the node sent, or a frame this client could not read.</summary>
    public string? Problem => _problem;

    /// <summary>Connects, says hello as <paramref name="nick"/> and joins <paramref name="room"/>.</summary>
    public static async Task<RawChatClient> ConnectAsync(int port, string nick, string room, MessageHandler? onMessage = null, TimeSpan? sendTimeout = null)
    {
        var client = new RawChatClient(await ConnectSocketAsync(port, sendTimeout ?? TimeSpan.FromSeconds(10)), room, onMessage);
        client.StartReading();
        try
        {
            var welcome = await client.RequestAsync($"{{\"type\":\"hello\",\"nick\":\"{nick}\"}}\n", IsType("welcome", "error"), HandshakeDeadline);
            if (!welcome.Contains("\"welcome\"", StringComparison.Ordinal)) throw new InvalidOperationException($"hello refused: {welcome}");
            if (room != "#lobby") await client.RequestAsync($"{{\"type\":\"join\",\"room\":\"{room}\"}}\n", IsType("joined", "error"), HandshakeDeadline);
            return client;
        }
        catch (Exception error) when (error is IOException or TimeoutException or InvalidOperationException or System.Net.Sockets.SocketException)
        {
            // Say what the node sent last (a redirect, an error), not only that the connection ended.
            var problem = client.Problem;
            await client.DisposeAsync();
            throw new IOException($"{nick}: {error.Message}{(problem is null ? "" : $"; the node sent {problem}")}", error);
        }
    }

    /// <summary>The frame of a say into this client's room, newline included. <paramref name="id"/> is the
    /// client message id that Client.CSharp always sends (positive, one per message).</summary>
    public string SayFrame(string text, long id) => $"{{\"type\":\"say\",\"room\":\"{Room}\",\"text\":\"{text}\",\"id\":{id}}}\n";

    private static Func<string, bool> IsType(params string[] types) =>
        line => types.Any(type => line.Contains($"\"type\":\"{type}\"", StringComparison.Ordinal));

    protected override void OnLine(ReadOnlySpan<byte> line)
    {
        if (TryReadAsWritten(line)) return;
        try
        {
            var reader = new Utf8JsonReader(line);
            if (!IsMessageFrame(ref reader))
            {
                if (line.IndexOf("\"error\""u8) >= 0 || line.IndexOf("\"redirect\""u8) >= 0) _problem = Encoding.UTF8.GetString(line);
                Offer(line);
                return;
            }
            ReadMessage(ref reader);
        }
        catch (JsonException error)
        {
            _problem = $"unreadable frame ({error.Message}): {Encoding.UTF8.GetString(line)}";
        }
    }

    /// <summary>
    /// A message frame of this room laid out as the node writes it (Protocol.FSharp/Wire.fs:
    /// "v", "type", "room", "seq", "from", "node", "text", "id"), read by position without a JSON
    /// pass, as the IRC receiver reads a PRIVMSG: a full pass per delivery cost the benchmark's
    /// receivers 1.6 times what the IRC ones spend, on the cores the server needs. Anything else
    /// (another layout, another room, an escaped text) goes to the JSON reader below.
    /// </summary>
    private bool TryReadAsWritten(ReadOnlySpan<byte> line)
    {
        if (!line.StartsWith(_messagePrefix)) return false;
        var rest = line[_messagePrefix.Length..];
        if (!System.Buffers.Text.Utf8Parser.TryParse(rest, out long seq, out var digits) || digits >= rest.Length || rest[digits] != (byte)',') return false;
        rest = rest[digits..];
        var textAt = rest.IndexOf("\"text\":\""u8);
        if (textAt < 0) return false;
        var text = rest[(textAt + 8)..];
        var end = text.IndexOfAny((byte)'"', (byte)'\\');
        if (end < 0 || text[end] != (byte)'"') return false;
        Seq.Observe(seq);
        _onMessage?.Invoke(seq, text[..end]);
        return true;
    }

    /// <summary>Reads up to the "type" property; true when it says "message".</summary>
    private static bool IsMessageFrame(ref Utf8JsonReader reader)
    {
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isType = reader.ValueTextEquals("type"u8);
            reader.Read();
            if (isType) return reader.TokenType == JsonTokenType.String && reader.ValueTextEquals("message"u8);
            reader.Skip();
        }
        return false;
    }

    /// <summary>Reads the rest of a message frame, in any field order.</summary>
    private void ReadMessage(ref Utf8JsonReader reader)
    {
        var inRoom = false;
        long? seq = null;
        ReadOnlySpan<byte> text = default;
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("room"u8)) { reader.Read(); inRoom = reader.ValueTextEquals(_room); }
            else if (reader.ValueTextEquals("seq"u8)) { reader.Read(); seq = reader.GetInt64(); }
            else if (reader.ValueTextEquals("text"u8))
            {
                reader.Read();
                // Load texts are plain ASCII, so the raw bytes are the text; anything escaped is copied.
                if (reader.ValueIsEscaped) text = Encoding.UTF8.GetBytes(reader.GetString() ?? "");
                else text = reader.ValueSpan;
            }
            else { reader.Read(); reader.Skip(); }
        }
        if (!inRoom || seq is not { } number) return;
        Seq.Observe(number);
        _onMessage?.Invoke(number, text);
    }
}
