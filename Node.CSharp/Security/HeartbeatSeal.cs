using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace FormalChat.Node.Security;

/// <summary>
/// Seals heartbeat datagrams with the cluster key and opens them again: pure, no sockets and no
/// clock (the time is a parameter). A sealed datagram is one line of ASCII words, then the
/// heartbeat's JSON unchanged (docs/SECURITY.md, "Heartbeat datagrams"):
/// <code>
/// FCHB1 &lt;mac&gt; &lt;incarnation&gt; &lt;counter&gt; &lt;sent at&gt; &lt;heartbeat JSON&gt;
/// </code>
/// mac: HMAC-SHA256 under the cluster key of "formalchat heartbeat v1\n" followed by every byte
/// after the mac and its space, as 64 lowercase hex digits. incarnation: 16 hex digits drawn at
/// random when the sending process starts. counter: decimal, one more for every datagram that
/// incarnation seals. sent at: the sender's clock in Unix milliseconds, decimal.
/// </summary>
public static class HeartbeatSeal
{
    public const string Version = "FCHB1";

    private static readonly byte[] Domain = Encoding.ASCII.GetBytes("formalchat heartbeat v1\n");

    public readonly record struct Opened(ulong Incarnation, long Counter, long SentAtUnixMs, string Json);

    public static byte[] Seal(ClusterKey key, ulong incarnation, long counter, long sentAtUnixMs, ReadOnlySpan<byte> json)
    {
        var header = Encoding.ASCII.GetBytes($"{incarnation:x16} {counter.ToString(CultureInfo.InvariantCulture)} {sentAtUnixMs.ToString(CultureInfo.InvariantCulture)} ");
        var body = new byte[header.Length + json.Length];
        header.CopyTo(body, 0);
        json.CopyTo(body.AsSpan(header.Length));
        var mac = Convert.ToHexString(MacOf(key, body)).ToLowerInvariant();
        return [.. Encoding.ASCII.GetBytes($"{Version} {mac} "), .. body];
    }

    /// <summary>Checks the MAC and the fields; null and a reason when the datagram is not a
    /// heartbeat sealed with this key. Replays are the caller's to catch (HeartbeatReplayGuard).</summary>
    public static Opened? Open(ClusterKey key, ReadOnlySpan<byte> datagram, out string? refusal)
    {
        refusal = null;
        var prefix = Encoding.ASCII.GetBytes(Version + " ");
        const int macHexLength = 2 * HMACSHA256.HashSizeInBytes;
        if (!datagram.StartsWith(prefix))
        {
            refusal = "it is not sealed with a cluster key (a node without one, or a forgery)";
            return null;
        }
        var rest = datagram[prefix.Length..];
        if (rest.Length < macHexLength + 1 || rest[macHexLength] != (byte)' ')
        {
            refusal = "its seal is malformed";
            return null;
        }
        var body = rest[(macHexLength + 1)..];
        // Compared as the lowercase hex that Seal writes: one datagram has one valid spelling.
        var expected = Encoding.ASCII.GetBytes(Convert.ToHexString(MacOf(key, body)).ToLowerInvariant());
        if (!CryptographicOperations.FixedTimeEquals(expected, rest[..macHexLength]))
        {
            refusal = "its MAC does not verify (a wrong cluster key, or a forgery)";
            return null;
        }
        // Authentic from here on: a malformed header is a bug in a node of ours, still refused.
        if (!TryWord(ref body, out var incarnationText) || !ulong.TryParse(incarnationText, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var incarnation)
            || !TryWord(ref body, out var counterText) || !long.TryParse(counterText, NumberStyles.None, CultureInfo.InvariantCulture, out var counter)
            || !TryWord(ref body, out var sentAtText) || !long.TryParse(sentAtText, NumberStyles.None, CultureInfo.InvariantCulture, out var sentAt))
        {
            refusal = "its sealed header is malformed";
            return null;
        }
        return new Opened(incarnation, counter, sentAt, Encoding.UTF8.GetString(body).TrimEnd('\n'));
    }

    private static byte[] MacOf(ClusterKey key, ReadOnlySpan<byte> body)
    {
        var input = new byte[Domain.Length + body.Length];
        Domain.CopyTo(input, 0);
        body.CopyTo(input.AsSpan(Domain.Length));
        return key.Mac(input);
    }

    private static bool TryWord(ref ReadOnlySpan<byte> text, out string word)
    {
        var space = text.IndexOf((byte)' ');
        word = space > 0 && space <= 20 ? Encoding.ASCII.GetString(text[..space]) : "";
        if (word.Length == 0) return false;
        text = text[(space + 1)..];
        return true;
    }
}
