using System.Diagnostics;
using System.Text;
using FormalChat.Cluster.Tests.RawClients;

namespace FormalChat.Benchmarks.Fanout;

/// <summary>
/// A raw IRC client: registers with NICK/USER, joins a channel, answers PING, and hands the
/// text of every channel PRIVMSG to its <see cref="DeliveryLog"/>. Everything else is offered
/// to waiters (numerics of the handshake, PONG).
/// </summary>
public sealed class IrcClient : RawLineClient
{
    private static readonly TimeSpan HandshakeDeadline = TimeSpan.FromSeconds(30);

    private readonly DeliveryLog? _log;
    private volatile string? _problem;

    private IrcClient(ConnectedSocket socket, string nick, DeliveryLog? log) : base(socket)
    {
        Nick = nick;
        _log = log;
    }

    public string Nick { get; }

    /// <summary>The last ERROR line the server sent (it closes the connection after one).</summary>
    public string? Problem => _problem;

    public static async Task<IrcClient> ConnectAsync(int port, string nick, DeliveryLog? log)
    {
        var client = new IrcClient(await ConnectSocketAsync(port, TimeSpan.FromSeconds(10)), nick, log);
        client.StartReading();
        try
        {
            var reply = await client.RequestAsync($"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n",
                line => Numeric(line) is "001" or "433" || line.StartsWith("ERROR", StringComparison.Ordinal), HandshakeDeadline);
            if (Numeric(reply) != "001") throw new InvalidOperationException($"registration of {nick} refused: {reply}");
            return client;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    /// <summary>Joins and waits for the end of the names list, after which the channel's messages reach this client.</summary>
    public async Task JoinAsync(string channel)
    {
        var reply = await RequestAsync($"JOIN {channel}\r\n", line => Numeric(line) is { } n && (n == "366" || n[0] is '4' or '5'), HandshakeDeadline);
        if (Numeric(reply) != "366") throw new InvalidOperationException($"JOIN {channel} refused: {reply}");
    }

    /// <summary>Becomes an operator and sets user mode +F: ngircd's relaxed flood protection for this client.</summary>
    public async Task RelaxFloodProtectionAsync(string name, string password)
    {
        var oper = await RequestAsync($"OPER {name} {password}\r\n", line => Numeric(line) is { } n && (n == "381" || n[0] is '4' or '5'), HandshakeDeadline);
        if (Numeric(oper) != "381") throw new InvalidOperationException($"OPER refused: {oper}");
        var mode = await RequestAsync($"MODE {Nick} +F\r\n",
            line => line.Contains($" MODE {Nick} ", StringComparison.Ordinal) && line.Contains("+F", StringComparison.Ordinal) || Numeric(line) is { } n && n[0] is '4' or '5',
            HandshakeDeadline);
        if (Numeric(mode) is not null) throw new InvalidOperationException($"MODE +F refused: {mode}");
    }

    /// <summary>The numeric of a server reply (":server 001 nick ..."), or null.</summary>
    private static string? Numeric(string line)
    {
        var parts = line.Split(' ', 3);
        return parts.Length >= 2 && parts[0].StartsWith(':') && parts[1].Length == 3 && parts[1].All(char.IsAsciiDigit) ? parts[1] : null;
    }

    protected override void OnLine(ReadOnlySpan<byte> line)
    {
        // ":snd!~snd@127.0.0.1 PRIVMSG #bench :m123" — the hot path, read without allocating.
        var privmsg = line.IndexOf(" PRIVMSG "u8);
        if (privmsg >= 0 && _log is not null)
        {
            var rest = line[(privmsg + 9)..];
            var text = rest.IndexOf(" :"u8);
            if (text >= 0)
            {
                _log.Record(rest[(text + 2)..]);
                return;
            }
        }
        if (line.StartsWith("PING "u8))
        {
            Send("PONG " + Encoding.ASCII.GetString(line[5..]) + "\r\n");
            return;
        }
        if (line.StartsWith("ERROR"u8)) _problem = Encoding.UTF8.GetString(line);
        Offer(line);
    }
}
