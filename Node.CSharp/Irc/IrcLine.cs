using System.Text;

namespace FormalChat.Node.Irc;

/// <summary>
/// One IRC message, parsed or to be sent. RFC 2812 section 2.3.1:
/// <c>message = [ ":" prefix SPACE ] command [ params ] crlf</c>,
/// <c>params = *14( SPACE middle ) [ SPACE ":" trailing ]</c>.
/// IRCv3 message tags (<c>@a=b ...</c>) before the prefix are skipped: FormalChat has none to honour.
/// </summary>
public sealed record IrcLine(string? Prefix, string Command, IReadOnlyList<string> Parameters)
{
    /// <summary>RFC 1459 section 2.3: a message is at most 512 bytes, CR LF included.</summary>
    public const int MaxBytes = 512;

    /// <summary>The parameters of a message in the RFC's 15 at most.</summary>
    private const int MaxParameters = 15;

    public string Parameter(int index) => index < Parameters.Count ? Parameters[index] : "";

    /// <summary>Null for an empty line (RFC 2812: "empty messages are silently ignored").</summary>
    public static IrcLine? Parse(string line)
    {
        var rest = line.TrimEnd('\r', '\n').TrimStart(' ');
        if (rest.StartsWith('@')) rest = AfterWord(rest);
        string? prefix = null;
        if (rest.StartsWith(':'))
        {
            prefix = Word(rest)[1..];
            rest = AfterWord(rest);
        }
        if (rest.Length == 0) return null;
        var command = Word(rest).ToUpperInvariant();
        rest = AfterWord(rest);
        var parameters = new List<string>();
        while (rest.Length > 0)
        {
            if (rest.StartsWith(':') || parameters.Count == MaxParameters - 1)
            {
                parameters.Add(rest.StartsWith(':') ? rest[1..] : rest);
                break;
            }
            parameters.Add(Word(rest));
            rest = AfterWord(rest);
        }
        return new IrcLine(prefix, command, parameters);
    }

    private static string Word(string text)
    {
        var space = text.IndexOf(' ');
        return space < 0 ? text : text[..space];
    }

    private static string AfterWord(string text)
    {
        var space = text.IndexOf(' ');
        return space < 0 ? "" : text[(space + 1)..].TrimStart(' ');
    }

    /// <summary>
    /// The wire form without CR LF. The last parameter is always written as a trailing one
    /// (<c>:</c>), which every client reads, so text with spaces needs no special case.
    /// </summary>
    public override string ToString()
    {
        var text = new StringBuilder();
        if (Prefix is not null) text.Append(':').Append(Prefix).Append(' ');
        text.Append(Command);
        for (var i = 0; i < Parameters.Count; i++)
        {
            text.Append(' ');
            if (i == Parameters.Count - 1) text.Append(':');
            text.Append(Parameters[i]);
        }
        return text.ToString();
    }

    /// <summary>
    /// Splits <paramref name="text"/> into pieces that each fit, after <paramref name="head"/>
    /// (everything up to the trailing parameter's ':'), in one 512-byte message with its CR LF.
    /// A native client may send up to 4,000 characters in one message; an IRC client gets them
    /// as several lines, split between characters, never inside one.
    /// </summary>
    public static IEnumerable<string> SplitToFit(string head, string text)
    {
        var budget = MaxBytes - 2 - Encoding.UTF8.GetByteCount(head);
        if (budget < 16) budget = 16;
        var start = 0;
        while (start < text.Length)
        {
            var length = 0;
            var bytes = 0;
            while (start + length < text.Length)
            {
                var step = char.IsHighSurrogate(text[start + length]) && start + length + 1 < text.Length ? 2 : 1;
                var size = Encoding.UTF8.GetByteCount(text.AsSpan(start + length, step));
                if (bytes + size > budget) break;
                bytes += size;
                length += step;
            }
            yield return text.Substring(start, length);
            start += length;
        }
    }
}
