using System.Diagnostics;
using FormalChat.Protocol;

namespace FormalChat.Client;

/// Carries the client over to another node when its session (ClientSession.fs) says so: tries
/// the targets the session orders (ClientSession.failoverTargets: the redirect target first, the
/// least-loaded known node other than the one that failed, that one last), then whatever
/// discovery finds, round after round with a short backoff until the deadline. The session
/// writes the resuming hello, tells the user and re-sends what was unconfirmed; this is the
/// part with sockets and clocks.
public static class Failover
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan WelcomeTimeout = TimeSpan.FromSeconds(3);
    /// The nickname may still be held by the failed node's entry until the cluster forgets it.
    private static readonly TimeSpan NickRetryDelay = TimeSpan.FromMilliseconds(300);
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan LongestBackoff = TimeSpan.FromSeconds(1);

    public static async Task RunAsync(ChatClient client, FailoverPlan plan)
    {
        var clock = Stopwatch.StartNew();
        var backoff = FirstBackoff;
        var lastFailure = plan.Reason;
        for (var round = 0; clock.Elapsed < Deadline && !client.IsQuitting; round++)
        {
            foreach (var server in await CandidatesAsync(client, plan, rediscover: round > 0, clock))
            {
                if (clock.Elapsed >= Deadline || client.IsQuitting) break;
                var attempt = await AttemptAsync(client, server, clock);
                if (attempt.Session is { } session)
                {
                    await client.AfterWelcomeAsync(session);
                    return;
                }
                lastFailure = attempt.Reason;
            }
            await Task.Delay(backoff);
            backoff = backoff * 2 < LongestBackoff ? backoff * 2 : LongestBackoff;
        }
        if (client.IsQuitting) return;
        var what = plan.Redirect is { } moved ? $"the redirect to node {moved.Value.Node}" : $"node {plan.Previous} failed ({plan.Reason})";
        client.GiveUp($"could not reconnect within {Deadline.TotalSeconds:0} s after {what}; last attempt: {lastFailure}");
    }

    /// Where to try, best first. The first round uses the nodes the client already knows; later
    /// rounds ask discovery again. The failed node comes last, and only if discovery still hears it.
    private static async Task<IReadOnlyList<Endpoint>> CandidatesAsync(ChatClient client, FailoverPlan plan, bool rediscover, Stopwatch clock)
    {
        IReadOnlyList<NodeCandidate> nodes = client.KnownNodes;
        if (rediscover || nodes.All(node => node.Id == plan.Previous))
        {
            using var budget = new CancellationTokenSource(Deadline - clock.Elapsed);
            nodes = await Discovery.FindAsync(client.Options.Discovery, client.Options.Tls?.Value, budget.Token);
            client.AddKnownNodes(nodes);
        }
        return ClientSession.failoverTargets(plan, nodes).ToList();
    }

    /// One node: connect and resume, saying hello again while the nickname is still taken.
    private static async Task<Attempt> AttemptAsync(ChatClient client, Endpoint server, Stopwatch clock)
    {
        while (true)
        {
            var attempt = await client.TryConnectAsync(server, ConnectTimeout, WelcomeTimeout);
            if (attempt.Outcome != AttemptOutcome.NickTaken || clock.Elapsed + NickRetryDelay >= Deadline) return attempt;
            await Task.Delay(NickRetryDelay);
        }
    }
}
