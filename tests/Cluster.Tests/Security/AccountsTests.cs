using System.Net;
using System.Text.RegularExpressions;
using FormalChat.Node;
using FormalChat.Node.Security;
using FormalChat.Protocol;
using Microsoft.Extensions.Logging.Abstractions;
using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests.Security;

/// <summary>
/// Issue 11, "Accounts": /register sets a password for a nick; from then on a hello for that nick
/// needs it on every node, after the accounts room's owner is killed and after a full restart.
/// Failed logins are throttled per address and per nick, and counted in the status. Session
/// tokens rotate on every resume, and the old token is dead.
/// </summary>
public class AccountsTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private const string Secret = "correct horse battery staple";

    private static JObject Hello(string nick, string? password = null, string? session = null)
    {
        var hello = new JObject { ["v"] = 1, ["type"] = "hello", ["nick"] = nick };
        if (password is not null) hello["password"] = password;
        if (session is not null) hello["session"] = session;
        return hello;
    }

    /// <summary>A new connection says hello; the answer (welcome or error) and whether the node then closed it.</summary>
    private static async Task<(JObject Answer, TestClient Client)> TryHelloAsync(int port, JObject hello)
    {
        var client = await TestClient.OpenAsync(port);
        await client.SendAsync(hello);
        var answer = await client.NextAsync(frame => (string?)frame["type"] is "welcome" or "error");
        return (answer, client);
    }

    /// <summary>The answer's code, or "welcome".</summary>
    private static async Task<string> HelloOutcomeAsync(int port, JObject hello)
    {
        var (answer, client) = await TryHelloAsync(port, hello);
        await using (client)
        {
            var outcome = (string?)answer["type"] == "welcome" ? "welcome" : (string)answer["code"]!;
            if (outcome != "welcome") await client.WaitClosedAsync();
            return outcome;
        }
    }

    private static async Task RegisterAsync(int port, string nick, string password)
    {
        await using var client = await TestClient.ConnectAsync(port, nick);
        await client.SendAsync(new JObject { ["v"] = 1, ["type"] = "register", ["password"] = password });
        var told = await client.NextAsync(frame => (string?)frame["type"] == "system" && ((string?)frame["text"] ?? "").StartsWith("registered"), Deadline);
        Assert.Contains(nick, (string?)told["text"]);
    }

    /// <summary>Waits until the nick is free again on the node (its last session's leave has arrived there).</summary>
    private static Task WaitUntilPasswordNeededAsync(int port, string nick) =>
        Eventually.TrueAsync(async () => await HelloOutcomeAsync(port, Hello(nick)) == "password-required", Deadline, $"{nick} needs a password on port {port}");

    /// <summary>The node the leader last placed the accounts room on, from the nodes' logs.</summary>
    private static int AccountsOwner(TestCluster cluster)
    {
        var placed = Regex.Matches(cluster.Output, @"room #@accounts is placed on node (\d+)");
        Assert.NotEmpty(placed);
        return int.Parse(placed[^1].Groups[1].Value);
    }

    [Fact]
    public async Task A_password_registered_on_node_1_is_needed_on_node_2_and_survives_kill_9_of_the_owner_and_a_full_restart()
    {
        var nodes = new[] { 1, 2, 3 };
        await using var cluster = await TestCluster.StartAsync(3);
        await cluster.WaitForLeaderAsync(leader: 3, nodes, Deadline);

        await RegisterAsync(cluster.ClientPort(1), "alice", Secret);
        await WaitUntilPasswordNeededAsync(cluster.ClientPort(2), "alice");
        Assert.Equal("password-wrong", await HelloOutcomeAsync(cluster.ClientPort(2), Hello("alice", "guess")));
        Assert.Equal("welcome", await HelloOutcomeAsync(cluster.ClientPort(2), Hello("alice", Secret)));
        // Other nicks are not affected.
        Assert.Equal("welcome", await HelloOutcomeAsync(cluster.ClientPort(2), Hello("bob")));

        var owner = AccountsOwner(cluster);
        cluster.Kill(owner);
        var survivors = nodes.Where(id => id != owner).ToArray();
        foreach (var id in survivors)
        {
            await WaitUntilPasswordNeededAsync(cluster.ClientPort(id), "alice");
            Assert.Equal("welcome", await HelloOutcomeAsync(cluster.ClientPort(id), Hello("alice", Secret)));
        }

        foreach (var id in survivors) cluster.Kill(id);
        foreach (var id in nodes) cluster.StartNode(id);
        await cluster.WaitUntilListeningAsync();
        foreach (var id in nodes)
        {
            // Eventually: the welcome on the node before is still leaving (nick-taken until its leave arrives).
            await WaitUntilPasswordNeededAsync(cluster.ClientPort(id), "alice");
            Assert.Equal("password-wrong", await HelloOutcomeAsync(cluster.ClientPort(id), Hello("alice", "guess")));
            Assert.Equal("welcome", await HelloOutcomeAsync(cluster.ClientPort(id), Hello("alice", Secret)));
        }
        var security = (await cluster.StatusAsync(1))["clientSecurity"]!;
        Assert.Equal(1, (long)security["failedLogins"]!);
    }

    [Fact]
    public async Task Guessing_a_password_over_loopback_is_throttled_closed_and_counted()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        await RegisterAsync(cluster.ClientPort(1), "alice", Secret);
        await WaitUntilPasswordNeededAsync(cluster.ClientPort(1), "alice");

        var failures = 0;
        string outcome;
        while ((outcome = await HelloOutcomeAsync(cluster.ClientPort(1), Hello("alice", $"guess {failures}"))) == "password-wrong")
        {
            failures++;
            Assert.True(failures <= ResumeThrottle.Burst + 5, "the guesses are throttled");
        }
        Assert.Equal("login-throttled", outcome);
        Assert.InRange(failures, ResumeThrottle.Burst, ResumeThrottle.Burst + 5);
        // A hello without a password is no guess, and another nick still gets in.
        Assert.Equal("welcome", await HelloOutcomeAsync(cluster.ClientPort(1), Hello("carol")));

        var security = (await cluster.StatusAsync(1))["clientSecurity"]!;
        Assert.Equal(failures, (long)security["failedLogins"]!);
        Assert.Equal(1, (long)security["throttledLogins"]!);
        await cluster.WaitForOutputAsync("refused a login from 127.0.0.1", Deadline);
    }

    [Fact]
    public async Task A_resume_on_another_node_rotates_the_token_and_the_old_token_is_refused()
    {
        var nodes = new[] { 1, 2, 3 };
        await using var cluster = await TestCluster.StartAsync(3);
        await cluster.WaitForLeaderAsync(leader: 3, nodes, Deadline);
        await using var first = await TestClient.ConnectAsync(cluster.ClientPort(1), "alice");
        var oldToken = (string)first.Welcome!["session"]!;

        // bob (on node 3, so no node is loaded enough to redirect anyone) sees alice once her arrival has travelled.
        await using var bob = await TestClient.ConnectAsync(cluster.ClientPort(3), "bob");
        await Eventually.TrueAsync(async () =>
        {
            await bob.SendAsync(new JObject { ["type"] = "who" });
            var who = await bob.NextAsync(frame => (string?)frame["type"] == "who");
            return who["users"]!.Any(user => (string?)user["nick"] == "alice");
        }, Deadline, "node 3 knows alice");

        var (resumed, second) = await TryHelloAsync(cluster.ClientPort(2), Hello("alice", session: oldToken));
        await using (second)
        {
            Assert.Equal("welcome", (string?)resumed["type"]);
            var newToken = (string)resumed["session"]!;
            Assert.NotEqual(oldToken, newToken);
            await first.WaitClosedAsync();

            Assert.Equal("nick-taken", await HelloOutcomeAsync(cluster.ClientPort(3), Hello("alice", session: oldToken)));
            Assert.False(second.Closed, "the resumed session stays");
        }
    }

    // -----------------------------------------------------------------------------------------
    // The shell's parts without a node.

    [Fact]
    public void Records_are_salted_PBKDF2_SHA256_with_at_least_100000_iterations_and_verify_only_their_password()
    {
        var record = PasswordHasher.Hash(Secret);
        var parts = record.Split('$');
        Assert.Equal("pbkdf2-sha256", parts[0]);
        Assert.True(int.Parse(parts[1]) >= 100_000);
        Assert.True(PasswordHasher.Verify(Secret, record));
        Assert.False(PasswordHasher.Verify("correct horse battery stapler", record));
        Assert.NotEqual(record, PasswordHasher.Hash(Secret));
        Assert.False(PasswordHasher.Verify(Secret, "not a record"));
        Assert.False(PasswordHasher.Verify(Secret, "pbkdf2-sha256$999999999$AAAA$AAAA"));
    }

    [Fact]
    public void The_gate_hashes_a_registration_and_turns_a_hello_password_into_a_verdict()
    {
        var record = PasswordHasher.Hash(Secret);
        var gate = new PasswordGate(nick => nick == "alice" ? record : null);
        static ClientRequest HelloWith(string nick, string password) =>
            ClientRequest.NewHello(new HelloRequest(nick, null, Microsoft.FSharp.Collections.FSharpList<Tuple<string, long>>.Empty,
                Microsoft.FSharp.Core.FSharpOption<Password>.Some(Password.NewGiven(password))));

        var right = (ClientRequest.Hello)gate.Check(HelloWith("alice", Secret), out _)!;
        Assert.Equal(Password.NewHashed(record), right.Item.Password!.Value);
        var wrong = (ClientRequest.Hello)gate.Check(HelloWith("alice", "guess"), out _)!;
        Assert.Equal(Password.Mismatched, wrong.Item.Password!.Value);
        var noAccount = (ClientRequest.Hello)gate.Check(HelloWith("bob", "anything"), out _)!;
        Assert.Null(noAccount.Item.Password);

        var registered = (ClientRequest.Register)gate.Check(ClientRequest.NewRegister(Password.NewGiven(Secret)), out _)!;
        Assert.True(registered.password is Password.Hashed hashed && PasswordHasher.Verify(Secret, hashed.record));
        Assert.Null(gate.Check(ClientRequest.NewRegister(Password.NewGiven("")), out var refusal));
        Assert.NotNull(refusal);
    }

    [Fact]
    public void Wrong_passwords_for_one_nick_from_many_addresses_are_throttled_per_nick()
    {
        var counters = new InputCounters();
        var throttle = new ResumeThrottle(counters, NullLogger.Instance);
        for (var client = 1; client <= ResumeThrottle.Burst; client++)
        {
            var address = IPAddress.Parse($"192.0.2.{client}");
            Assert.Null(throttle.Admit(client, address, "alice"));
            throttle.Refused(client, ErrorCode.PasswordWrong);
        }
        Assert.Contains("too many failed logins for alice", throttle.Admit(100, IPAddress.Parse("192.0.2.100"), "alice"));
        Assert.Null(throttle.Admit(101, IPAddress.Parse("192.0.2.100"), "bob"));
        Assert.Equal(ResumeThrottle.Burst, counters.FailedLogins);
        Assert.Equal(1, counters.ThrottledLogins);
    }
}
