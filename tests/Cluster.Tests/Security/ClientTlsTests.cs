using System.Net;
using System.Net.Sockets;
using System.Text;
using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests.Security;

/// <summary>
/// Issue 11, "TLS for clients": with --tls-cert and --tls-key a node's client and IRC ports speak
/// TLS only; the real client (a process) chats over it with --tls-ca, says plainly why it refuses a
/// certificate, and a plain-text client is refused with a reason while the node stays up.
/// </summary>
public class ClientTlsTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    private static ClientProcess Client(string nick, int port, TestCluster cluster, params string[] tls) =>
        ClientProcess.Start(["--nick", nick, "--server", $"127.0.0.1:{port}", "--multicast", cluster.MulticastGroup, .. tls]);

    private static bool Is(JObject e, string name) => (string?)e["event"] == name;

    [Fact]
    public async Task Two_TLS_clients_on_different_nodes_chat_and_the_status_says_the_client_port_is_TLS()
    {
        using var certificates = new TestCertificates();
        await using var cluster = await TestCluster.StartAsync(2, certificates.NodeArguments);
        await using var alice = Client("alice", cluster.ClientPort(1), cluster, "--tls-ca", certificates.AuthorityFile);
        await using var bob = Client("bob", cluster.ClientPort(2), cluster, "--tls-ca", certificates.AuthorityFile);
        Assert.Equal(1, (int)(await alice.NextAsync(e => Is(e, "welcome")))["node"]!);
        Assert.Equal(2, (int)(await bob.NextAsync(e => Is(e, "welcome")))["node"]!);

        await alice.TypeAsync("hello bob, over TLS");
        var heard = await bob.NextAsync(e => Is(e, "message") && (string?)e["text"] == "hello bob, over TLS", Deadline);
        Assert.Equal("alice", (string?)heard["from"]);
        await bob.TypeAsync("/msg alice and back, privately");
        await alice.NextAsync(e => Is(e, "private") && (string?)e["text"] == "and back, privately", Deadline);

        await using var probe = await TlsLineClient.OpenAsync(cluster.ClientPort(1), certificates.AuthorityFile);
        Assert.Contains(probe.Protocol, new[] { "Tls12", "Tls13" });
        var status = await probe.StatusAsync();
        Assert.True((bool)status["clientSecurity"]!["tls"]!, status.ToString());
        await cluster.WaitForOutputAsync("TLS on the client port: TLS 1.2+ only", Deadline);
    }

    [Fact]
    public async Task A_plain_text_client_on_a_TLS_port_is_refused_with_a_reason_and_the_node_stays_up()
    {
        using var certificates = new TestCertificates();
        var ircPort = Ports.FreeTcp();
        await using var cluster = await TestCluster.StartAsync(1, [.. certificates.NodeArguments, "--irc-port", ircPort.ToString()]);

        // A raw plain-text connection: one error frame, in the clear, then the node closes it.
        await using (var plain = await TestClient.OpenAsync(cluster.ClientPort(1)))
        {
            await plain.SendAsync(new JObject { ["v"] = 1, ["type"] = "hello", ["nick"] = "plain" });
            var refused = await plain.NextAsync(frame => (string?)frame["type"] == "error", Deadline);
            Assert.Equal("tls-required", (string?)refused["code"]);
            Assert.Contains("TLS only", (string?)refused["reason"]);
            await plain.WaitClosedAsync();
        }

        // The real client without --tls says why and exits 1, rather than hanging.
        await using (var plainClient = Client("plainclient", cluster.ClientPort(1), cluster))
        {
            var ended = await plainClient.NextAsync(e => Is(e, "disconnected"), Deadline);
            Assert.Contains("TLS only", (string?)ended["reason"]);
            Assert.Contains("--tls", (string?)ended["reason"]);
            Assert.Equal(1, await plainClient.ExitCodeAsync());
        }

        // An IRC client in plain text gets an IRC ERROR line.
        using (var irc = new TcpClient())
        {
            await irc.ConnectAsync(IPAddress.Loopback, ircPort);
            var stream = irc.GetStream();
            await stream.WriteAsync(Encoding.ASCII.GetBytes("NICK carol\r\nUSER carol 0 * :Carol\r\n"));
            using var reader = new StreamReader(stream, Encoding.ASCII);
            using var deadline = new CancellationTokenSource(Deadline);
            var line = await reader.ReadLineAsync(deadline.Token);
            Assert.StartsWith("ERROR :Closing Link", line);
            Assert.Contains("TLS only", line);
        }

        // The node is still up, and serves TLS clients, native and IRC.
        await using var alice = Client("alice", cluster.ClientPort(1), cluster, "--tls-ca", certificates.AuthorityFile);
        await alice.NextAsync(e => Is(e, "welcome"), Deadline);
        await using (var ircOverTls = await TlsLineClient.OpenAsync(ircPort, certificates.AuthorityFile))
        {
            await ircOverTls.SendLineAsync("NICK dave\r\nUSER dave 0 * :Dave\r");
            await ircOverTls.NextLineAsync(line => line.Contains(" 001 dave "));
        }
        await using var probe = await TlsLineClient.OpenAsync(cluster.ClientPort(1), certificates.AuthorityFile);
        var status = await probe.StatusAsync();
        Assert.True((long)status["clientSecurity"]!["refusedTlsConnections"]! >= 3, status.ToString());
        Assert.False(cluster.HasExited(1));
        await cluster.WaitForOutputAsync("it spoke plain text; this port accepts TLS only", Deadline);
    }

    [Fact]
    public async Task The_client_refuses_a_certificate_it_cannot_trust_or_that_names_another_host_and_a_node_without_TLS_and_says_why()
    {
        using var certificates = new TestCertificates();
        using var otherAuthority = new TestCertificates("Some other CA");
        using var elsewhere = new TestCertificates("FormalChat test CA", "chat.example.org");
        await using var cluster = new TestCluster();
        cluster.StartNode(1, certificates.NodeArguments);
        cluster.StartNode(2, elsewhere.NodeArguments);
        cluster.StartNode(3);
        await cluster.WaitUntilListeningAsync();

        // Started together: each is a process, and each must give up with its reason.
        await using var wrongCa = Client("wrongca", cluster.ClientPort(1), cluster, "--tls-ca", otherAuthority.AuthorityFile);
        await using var systemTrust = Client("systemtrust", cluster.ClientPort(1), cluster, "--tls");
        await using var wrongName = Client("wrongname", cluster.ClientPort(2), cluster, "--tls-ca", elsewhere.AuthorityFile);
        await using var plainNode = Client("plainnode", cluster.ClientPort(3), cluster, "--tls-ca", certificates.AuthorityFile);

        var notOurs = (string?)(await wrongCa.NextAsync(e => Is(e, "disconnected"), Deadline))["reason"];
        Assert.Contains("TLS: the node's certificate", notOurs);
        Assert.Contains($"not signed by the CA in --tls-ca {otherAuthority.AuthorityFile}", notOurs);
        Assert.Equal(1, await wrongCa.ExitCodeAsync());

        var untrusted = (string?)(await systemTrust.NextAsync(e => Is(e, "disconnected"), Deadline))["reason"];
        Assert.Contains("no certificate authority of this system signed it", untrusted);
        Assert.Contains("--tls-ca FILE", untrusted);

        var misnamed = (string?)(await wrongName.NextAsync(e => Is(e, "disconnected"), Deadline))["reason"];
        Assert.Contains("is not for 127.0.0.1: it is for chat.example.org", misnamed);

        var notTls = (string?)(await plainNode.NextAsync(e => Is(e, "disconnected"), Deadline))["reason"];
        Assert.Contains("speak TLS on this port", notTls);
        Assert.Equal(1, await plainNode.ExitCodeAsync());

        foreach (var id in new[] { 1, 2, 3 }) Assert.False(cluster.HasExited(id), $"node {id} stays up");
    }

    [Fact]
    public async Task A_node_whose_key_does_not_match_its_certificate_refuses_to_start_and_says_why()
    {
        using var certificates = new TestCertificates();
        using var other = new TestCertificates("Some other CA");
        await using var cluster = new TestCluster();
        cluster.StartNode(1, "--tls-cert", certificates.CertificateFile, "--tls-key", other.KeyFile);
        await Eventually.TrueAsync(() => Task.FromResult(cluster.HasExited(1)), Deadline, "the node exits", () => cluster.Output);
        Assert.Equal(1, cluster.ExitCode(1));
        await cluster.WaitForOutputAsync("refuses to start: --tls-cert", Deadline);
    }
}
