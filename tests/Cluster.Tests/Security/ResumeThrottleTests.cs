using System.Net;
using FormalChat.Node;
using FormalChat.Node.Security;
using FormalChat.Protocol;
using Microsoft.Extensions.Logging.Abstractions;
using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests.Security;

/// <summary>
/// Issue 11, "token guessing is not throttled (2,005 guesses in 1.3 s)": a hello with a session
/// token that is not the nickname's is a failed resume; an address gets ResumeThrottle.Burst of
/// them, then one every ResumeThrottle.RefillInterval, and past that its hellos with a token are
/// refused with login-throttled and their connections closed; both are counted in the status.
/// </summary>
public class ResumeThrottleTests
{
    private static readonly IPAddress Guesser = IPAddress.Parse("192.0.2.7");
    private static readonly IPAddress Other = IPAddress.Parse("192.0.2.8");

    /// <summary>A clock the test moves by hand.</summary>
    private sealed class ManualTime : TimeProvider
    {
        public long Ticks;
        public override long TimestampFrequency => TimeSpan.TicksPerSecond;
        public override long GetTimestamp() => Ticks;
        public void Advance(TimeSpan by) => Ticks += by.Ticks;
    }

    private static (ResumeThrottle Throttle, InputCounters Counters, ManualTime Time) NewThrottle()
    {
        var counters = new InputCounters();
        var time = new ManualTime();
        return (new ResumeThrottle(counters, NullLogger.Instance, time), counters, time);
    }

    /// <summary>One guess from a new connection: admitted or refused; an admitted one fails.</summary>
    private static bool Guess(ResumeThrottle throttle, long client, IPAddress address)
    {
        if (throttle.Admit(client, address) is not null) return false;
        throttle.Refused(client, ErrorCode.NickTaken);
        return true;
    }

    [Fact]
    public void An_address_gets_a_burst_of_failures_then_one_per_interval_and_other_addresses_are_not_affected()
    {
        var (throttle, counters, time) = NewThrottle();
        for (var client = 1; client <= ResumeThrottle.Burst; client++) Assert.True(Guess(throttle, client, Guesser), $"guess {client} is within the burst");
        Assert.False(Guess(throttle, 100, Guesser));
        Assert.Contains("too many failed resumes", throttle.Admit(101, Guesser));
        Assert.True(Guess(throttle, 102, Other), "another address has its own bucket");

        time.Advance(ResumeThrottle.RefillInterval);
        Assert.True(Guess(throttle, 103, Guesser), "one more after an interval");
        Assert.False(Guess(throttle, 104, Guesser));
        Assert.Equal(ResumeThrottle.Burst + 2, counters.FailedResumes);
        Assert.Equal(3, counters.ThrottledResumes);
    }

    [Fact]
    public void Resumes_that_work_cost_nothing_and_one_connection_waits_for_its_answer_before_guessing_again()
    {
        var (throttle, counters, _) = NewThrottle();
        for (var client = 1; client <= 5 * ResumeThrottle.Burst; client++)
        {
            Assert.Null(throttle.Admit(client, Guesser));
            throttle.Welcomed(client);
        }
        Assert.Null(throttle.Admit(1000, Guesser));
        Assert.Contains("one hello with a session token at a time", throttle.Admit(1000, Guesser));
        // Another refusal than nick-taken (a full node, say) is not a wrong token.
        throttle.Refused(1000, ErrorCode.ServerFull);
        throttle.Disconnected(1000);
        Assert.Equal(0, counters.FailedResumes);
    }

    [Fact]
    public async Task Guessing_a_session_token_over_loopback_is_throttled_closed_and_counted_and_the_real_user_stays()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        await using var alice = await TestClient.ConnectAsync(cluster.ClientPort(1), "alice");

        // nick-taken closes the connection, so each guess comes on a new one: the bucket is the address's.
        var failures = 0;
        JObject answer;
        while (true)
        {
            await using var guesser = await TestClient.OpenAsync(cluster.ClientPort(1));
            await guesser.SendAsync(new JObject { ["v"] = 1, ["type"] = "hello", ["nick"] = "alice", ["session"] = $"{failures:x32}" });
            answer = await guesser.NextAsync(frame => (string?)frame["type"] is "error" or "welcome");
            await guesser.WaitClosedAsync();
            if ((string?)answer["code"] != "nick-taken") break;
            failures++;
            Assert.True(failures <= ResumeThrottle.Burst + 5, "the guesses are throttled");
        }
        Assert.Equal("login-throttled", (string?)answer["code"]);
        Assert.Contains("too many failed resumes", (string?)answer["reason"]);
        Assert.InRange(failures, ResumeThrottle.Burst, ResumeThrottle.Burst + 5);

        // A new connection from the same address is refused at once; a hello without a token is not a guess.
        await using (var again = await TestClient.OpenAsync(cluster.ClientPort(1)))
        {
            await again.SendAsync(new JObject { ["v"] = 1, ["type"] = "hello", ["nick"] = "alice", ["session"] = "0123" });
            Assert.Equal("login-throttled", (string?)(await again.NextAsync(frame => (string?)frame["type"] == "error"))["code"]);
            await again.WaitClosedAsync();
        }
        await using var carol = await TestClient.ConnectAsync(cluster.ClientPort(1), "carol");

        Assert.False(alice.Closed, "the real alice keeps her connection");
        var security = (await cluster.StatusAsync(1))["clientSecurity"]!;
        Assert.Equal(failures, (long)security["failedResumes"]!);
        Assert.Equal(2, (long)security["throttledResumes"]!);
        Assert.False((bool)security["tls"]!);
        await cluster.WaitForOutputAsync("refused a resume from 127.0.0.1", TimeSpan.FromSeconds(15));
    }
}
