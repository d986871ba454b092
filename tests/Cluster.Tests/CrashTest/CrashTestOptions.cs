namespace FormalChat.Cluster.Tests.CrashTest;

/// <summary>
/// One crash test: how many nodes, for how long, how many clients in which rooms, how fast
/// they send, how often a node is killed, and the seed that drives every random choice.
/// </summary>
public sealed record CrashTestOptions
{
    public int Nodes { get; init; } = 3;

    /// How long the clients send and the chaos kills; the last kill's restart and the drain
    /// come after it.
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(60);

    /// Drives the chaos schedule (which node, when) and each client's send intervals.
    public int Seed { get; init; } = NewSeed();

    public int Clients { get; init; } = 6;

    /// Every client is in #lobby and in one of these, in turn; it sends to its rooms in turn.
    public IReadOnlyList<string> ExtraRooms { get; init; } = ["#dev", "#ops"];

    /// A client types its next line after a random pause in this range (0: as soon as its window allows).
    public TimeSpan SendPauseMin { get; init; } = TimeSpan.FromMilliseconds(20);
    public TimeSpan SendPauseMax { get; init; } = TimeSpan.FromMilliseconds(50);

    /// The most lines a client has typed and not yet seen acknowledged; the next one waits for an
    /// ack. The client session retries every unacknowledged line after a failover, in the order
    /// typed, so a window only changes how many are in doubt at once.
    public int Window { get; init; } = 16;

    /// After a killed node has rejoined (and every room has an up-to-date backup again), the
    /// next kill comes after a random pause in this range.
    public TimeSpan KillPauseMin { get; init; } = TimeSpan.FromSeconds(1);
    public TimeSpan KillPauseMax { get; init; } = TimeSpan.FromSeconds(3);

    /// The longest the chaos waits for one step (survivors agree, node rejoined, rooms backed up).
    public TimeSpan StepDeadline { get; init; } = TimeSpan.FromSeconds(30);

    /// After the sending stops: the longest wait for every line to be acknowledged and shown.
    public TimeSpan DrainDeadline { get; init; } = TimeSpan.FromSeconds(30);

    /// Extra arguments for every node process, at the start and at each restart.
    public IReadOnlyList<string> NodeArguments { get; init; } = [];

    /// Progress lines (kills, restarts, drain) as they happen.
    public Action<string> Progress { get; init; } = _ => { };

    /// FORMALCHAT_CRASH_SEED=<n> replays a run's chaos schedule; otherwise a fresh seed.
    public static int SeedFromEnvironment() =>
        int.TryParse(Environment.GetEnvironmentVariable("FORMALCHAT_CRASH_SEED"), out var seed) ? seed : NewSeed();

    private static int NewSeed() => Random.Shared.Next(1, int.MaxValue);

    public IReadOnlyList<string> RoomsOf(int client) => ["#lobby", ExtraRooms[client % ExtraRooms.Count]];
}
