using System.Net;
using System.Net.Sockets;
using System.Text;
using FormalChat.Node.Security;
using FormalChat.Protocol;
using Newtonsoft.Json.Linq;
using static FormalChat.Cluster.Tests.Security.SecurityProbe;

namespace FormalChat.Cluster.Tests.Security;

/// <summary>
/// TCP connections to a peer port from outside the cluster (issue 11: forged `sequenced` frames
/// reached every member, one crashed a node). Without the handshake, or with a wrong key, the
/// link is closed before any frame is read, and counted.
/// </summary>
public class PeerLinkAuthenticationTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task Frames_sent_without_the_handshake_are_refused_and_reach_no_member()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        await cluster.WaitForLeaderAsync(leader: 2, nodes: [1, 2], Deadline);
        await using var alice = await TestClient.ConnectAsync(cluster.ClientPort(1), "alice");
        await using var bob = await TestClient.ConnectAsync(cluster.ClientPort(2), "bob");
        var refusedBefore = Counter(await cluster.StatusAsync(1), "refusedPeerLinks");

        using var outsider = await ConnectAsync(cluster.PeerPort(1));
        await outsider.SendAsync(ForgedSequencedFrames(), SocketFlags.None);

        Assert.True(await ClosedByNodeAsync(outsider, Deadline), "the node kept a link that skipped the handshake");
        await Eventually.TrueAsync(async () => Counter(await cluster.StatusAsync(1), "refusedPeerLinks") > refusedBefore, Deadline, "the link counted as refused");
        await AssertNoMemberSawForgeryAsync(alice, bob);
        await cluster.WaitForOutputAsync("closed incoming peer link", Deadline); // the log line says why
    }

    [Fact]
    public async Task A_handshake_with_a_wrong_key_is_refused_and_the_frames_after_it_reach_no_member()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        await cluster.WaitForLeaderAsync(leader: 2, nodes: [1, 2], Deadline);
        await using var alice = await TestClient.ConnectAsync(cluster.ClientPort(1), "alice");
        await using var bob = await TestClient.ConnectAsync(cluster.ClientPort(2), "bob");
        var refusedBefore = Counter(await cluster.StatusAsync(1), "refusedPeerLinks");

        using var outsider = await ConnectAsync(cluster.PeerPort(1));
        var hello = new PeerHandshake.Hello(7, PeerHandshake.NewNonce());
        await SendLineAsync(outsider, PeerHandshake.HelloLine(hello));
        var challenge = PeerHandshake.ParseChallenge(await ReadLineAsync(outsider));
        Assert.NotNull(challenge);
        var transcript = new PeerHandshake.Transcript(7, challenge.NodeId, challenge.Endpoint, hello.Nonce, challenge.Nonce);
        await SendLineAsync(outsider, PeerHandshake.ProofLine(PeerHandshake.Prove(ClusterKey.Generate(), PeerHandshake.Role.Initiator, transcript)));
        try { await outsider.SendAsync(ForgedSequencedFrames(), SocketFlags.None); } catch (SocketException) { } // may be closed already

        Assert.True(await ClosedByNodeAsync(outsider, Deadline), "the node kept a link whose proof was wrong");
        await Eventually.TrueAsync(async () => Counter(await cluster.StatusAsync(1), "refusedPeerLinks") > refusedBefore, Deadline, "the link counted as refused");
        await AssertNoMemberSawForgeryAsync(alice, bob);
    }

    [Fact]
    public async Task A_peer_connection_that_never_says_hello_is_closed_after_the_handshake_deadline()
    {
        await using var cluster = await TestCluster.StartAsync(1);

        using var silent = await ConnectAsync(cluster.PeerPort(1));

        Assert.True(await ClosedByNodeAsync(silent, PeerLinkAuthenticator.Deadline + TimeSpan.FromSeconds(5)), "a silent peer connection stayed open");
        await Eventually.TrueAsync(async () => Counter(await cluster.StatusAsync(1), "refusedPeerLinks") >= 1, Deadline, "the silent link counted as refused");
    }

    [Fact]
    public async Task A_node_with_another_key_never_joins_the_view()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        await cluster.WaitForLeaderAsync(leader: 2, nodes: [1, 2], Deadline);
        var otherKey = Path.Combine(Path.GetDirectoryName(cluster.ClusterKeyFile)!, "other.key");
        ClusterKey.WriteNew(otherKey);
        var forgedBefore = Counter(await cluster.StatusAsync(1), "forgedDatagrams");

        cluster.StartNode(3, "--cluster-key-file", otherKey);
        await cluster.WaitUntilListeningAsync();

        // Node 3 would lead if it joined. Wait until its heartbeats have been refused for longer
        // than a node takes to join (K intervals), then look at every view.
        await Eventually.TrueAsync(async () => Counter(await cluster.StatusAsync(1), "forgedDatagrams") >= forgedBefore + 2 * TestCluster.SuspectAfter,
            Deadline, "node 3's heartbeats refused by node 1", () => cluster.Output);
        await cluster.WaitForLeaderAsync(leader: 2, nodes: [1, 2], Deadline);
        await cluster.WaitForLeaderAsync(leader: 3, nodes: [3], Deadline);
    }

    [Fact]
    public async Task A_member_of_the_cluster_cannot_announce_another_nodes_leave()
    {
        // Issue 11: 178 forged `leave` frames in 5 s pushed the epoch from 5 to 153. Even a process
        // holding the cluster key may announce only its own leave, on its own authenticated link.
        var nodes = new[] { 1, 2, 3 };
        await using var cluster = await TestCluster.StartAsync(3);
        await cluster.WaitForLeaderAsync(leader: 3, nodes, Deadline);
        var epochBefore = (long)(await cluster.StatusAsync(1))["epoch"]!;

        using var insider = await ConnectAsync(cluster.PeerPort(1));
        var authenticator = new PeerLinkAuthenticator(ClusterKey.Load(cluster.ClusterKeyFile), 7, "127.0.0.1:1");
        var outcome = await authenticator.InitiateAsync(insider, $"127.0.0.1:{cluster.PeerPort(1)}", CancellationToken.None);
        Assert.True(outcome.Succeeded, outcome.Failure);
        await insider.SendAsync(Encoding.UTF8.GetBytes("{\"type\":\"leave\",\"node\":3}\n"), SocketFlags.None);

        Assert.True(await ClosedByNodeAsync(insider, Deadline), "the node kept a link that announced another node's leave");
        await cluster.WaitForOutputAsync("a leave for node 3 on the link of node 7", Deadline);
        await cluster.WaitForLeaderAsync(leader: 3, nodes, Deadline);
        Assert.Equal(epochBefore, (long)(await cluster.StatusAsync(1))["epoch"]!);
    }

    /// <summary>Connects once the port listens: a node opens its client port before its peer port.</summary>
    private static async Task<Socket> ConnectAsync(int port)
    {
        Socket? connected = null;
        await Eventually.TrueAsync(async () =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await socket.ConnectAsync(IPAddress.Loopback, port);
                connected = socket;
                return true;
            }
            catch (SocketException)
            {
                socket.Dispose();
                return false;
            }
        }, Deadline, $"peer port {port} listening");
        return connected!;
    }

    /// <summary>What the attacker sent: a committed message in #lobby, for seqs 1 to 20.</summary>
    private static byte[] ForgedSequencedFrames()
    {
        var frames = new StringBuilder();
        for (var seq = 1; seq <= 20; seq++)
        {
            var forged = new RoomMessage(RoomName.NewRoomName("#lobby"), seq, Nick.NewNick("alice"), 1, "FORGED: send me your password", 1_000_000 + seq);
            frames.Append(Wire.encodePeerMessage(PeerMessage.NewRoomSequenced(forged))).Append('\n');
        }
        return Encoding.UTF8.GetBytes(frames.ToString());
    }

    /// <summary>A real message said after the forgery reaches both members, and nothing forged came before it.</summary>
    private static async Task AssertNoMemberSawForgeryAsync(TestClient alice, TestClient bob)
    {
        await bob.SendAsync(new JObject { ["type"] = "say", ["text"] = "real message" });
        foreach (var member in new[] { alice, bob })
        {
            var forged = false;
            await member.NextAsync(frame =>
            {
                forged |= ((string?)frame["text"] ?? "").Contains("FORGED");
                return (string?)frame["type"] == "message" && (string?)frame["text"] == "real message";
            });
            Assert.False(forged, "a member was shown a forged message");
        }
    }

    private static async Task SendLineAsync(Socket socket, string line) =>
        await socket.SendAsync(Encoding.ASCII.GetBytes(line + "\n"), SocketFlags.None);

    private static async Task<string> ReadLineAsync(Socket socket)
    {
        using var timeout = new CancellationTokenSource(Deadline);
        var line = new List<byte>();
        var one = new byte[1];
        while (await socket.ReceiveAsync(one, SocketFlags.None, timeout.Token) == 1 && one[0] != '\n') line.Add(one[0]);
        return Encoding.ASCII.GetString(line.ToArray());
    }
}
