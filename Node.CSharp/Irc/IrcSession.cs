namespace FormalChat.Node.Irc;

/// <summary>What a WHO/NAMES/ISON/WHOIS asked for: the core answers all of them with one WhoListed.</summary>
public enum WhoPurpose
{
    Names,
    Who,
    WhoUser,
    Ison,
    Whois,
}

/// <summary>A question to the core waiting for its WhoListed answer, keyed by room (null: everyone).</summary>
public sealed record PendingWho(WhoPurpose Purpose, string? Room, IReadOnlyList<string> Nicks);

/// <summary>
/// One IRC connection's translation state: who it says it is, whether the core has welcomed it,
/// its rooms as IRC shows them, and what it is waiting for. Not protocol state: the core keeps
/// that; this only remembers what IRC needs to word the replies. Only the IrcTranslator changes
/// it, under the gateway's lock of the session.
/// </summary>
public sealed class IrcSession(int nodeId, long firstMessageId)
{
    public int NodeId { get; } = nodeId;

    public string ServerName { get; } = $"node{nodeId}.formalchat";

    /// <summary>The nickname of the last NICK: the one asked for before the welcome, the one given after.</summary>
    public string? Nick { get; set; }

    public string? User { get; set; }

    /// <summary>The password of a PASS sent before the registration (RFC 2812 3.1.1): every hello
    /// of this connection carries it; null when none was given.</summary>
    public string? Password { get; set; }

    /// <summary>Why the core refused the hello for good (a registered nick's password), as the
    /// closing ERROR line gives it; null otherwise.</summary>
    public string? Refusal { get; set; }

    /// <summary>The nickname of a hello the core has not answered yet; null when none is waiting.</summary>
    public string? HelloPending { get; set; }

    /// <summary>True once the core has welcomed the nickname (IRC's "registered").</summary>
    public bool Registered { get; set; }

    public SortedSet<string> Rooms { get; } = new(StringComparer.Ordinal);

    /// <summary>Rooms asked for with JOIN and not yet confirmed: a PRIVMSG right behind the JOIN
    /// is fine, since the core takes one connection's requests in order.</summary>
    public HashSet<string> RoomsJoining { get; } = new(StringComparer.Ordinal);

    public List<PendingWho> PendingWhos { get; } = new();

    /// <summary>Questions waiting at most; the core answers each at once, so more means a bug or a
    /// flood, and the oldest is given up rather than kept.</summary>
    public const int MaxPendingWhos = 64;

    /// <summary>Ids of this connection's room posts not yet seen back from the room: the core's
    /// copy of one is its acknowledgement, which IRC does not show (a client shows its own line).</summary>
    public HashSet<long> UnacknowledgedPosts { get; } = new();

    /// <summary>Drawn at random by the gateway so that ids stay unique for one nickname across
    /// reconnections (the core drops a post whose id it already has from that nickname).</summary>
    private long _nextMessageId = firstMessageId;

    public long NextMessageId() => _nextMessageId++;

    /// <summary>The target of the last PRIVMSG to a nick, for the 401 of a NoSuchUser error.</summary>
    public string? LastPrivateTarget { get; set; }

    /// <summary>What the client said with its QUIT, for the closing ERROR line.</summary>
    public string? QuitMessage { get; set; }

    /// <summary>The nick as the target of a numeric: "*" until the core has welcomed one.</summary>
    public string Target => Registered && Nick is not null ? Nick : "*";

    public string UserName => User ?? Nick ?? "*";

    /// <summary>This client's own prefix, as its JOIN and PART echoes carry it.</summary>
    public string Prefix => $"{Target}!{UserName}@{ServerName}";

    /// <summary>Room messages this connection has posted and not yet seen acknowledged; bounded so a
    /// message the core never sequences (an owner crash) cannot grow the set without end.</summary>
    public const int MaxUnacknowledgedPosts = 4096;
}
