using System.Net.Sockets;
using System.Text;
using static FormalChat.Node.Security.PeerHandshake;

namespace FormalChat.Node.Security;

/// <summary>
/// Runs the peer-link handshake (PeerHandshake) on a freshly connected socket, before the socket
/// becomes a framed connection (Transport.CSharp). Each side sends nothing beyond its line until the other has answered,
/// so any byte past the expected line is a protocol violation and nothing is left buffered here
/// when the link goes on to frames. The whole exchange has a deadline: a link that stays silent
/// holds no slot for long.
/// </summary>
public sealed class PeerLinkAuthenticator(ClusterKey key, int selfId, string selfPeerEndpoint)
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(2);

    /// <summary>How a handshake ended: the other node's id, or why the link is refused.</summary>
    public readonly record struct Outcome(int PeerId, string? Failure)
    {
        public bool Succeeded => Failure is null;
        public static Outcome Failed(string reason) => new(0, reason);
    }

    /// <summary>The accepting side: waits for a HELLO, proves itself, checks the initiator's proof.</summary>
    public async Task<Outcome> RespondAsync(Socket socket, CancellationToken stopping)
    {
        using var deadline = WithDeadline(stopping);
        try
        {
            var hello = ParseHello(await ReadLineAsync(socket, deadline.Token).ConfigureAwait(false));
            if (hello is null) return Outcome.Failed("its first line was not a handshake HELLO (a frame without the handshake?)");
            var transcript = new Transcript(hello.NodeId, selfId, selfPeerEndpoint, hello.Nonce, NewNonce());
            var challenge = new Challenge(selfId, selfPeerEndpoint, transcript.ResponderNonce, Prove(key, Role.Responder, transcript));
            await WriteLineAsync(socket, ChallengeLine(challenge), deadline.Token).ConfigureAwait(false);
            var proof = ParseProof(await ReadLineAsync(socket, deadline.Token).ConfigureAwait(false));
            if (proof is null) return Outcome.Failed($"node {hello.NodeId} did not answer the challenge with a PROOF");
            if (!Verify(key, Role.Initiator, transcript, proof)) return Outcome.Failed($"the link claiming to be node {hello.NodeId} did not prove the cluster key (a wrong key?)");
            await WriteLineAsync(socket, WelcomeLine, deadline.Token).ConfigureAwait(false);
            return new Outcome(hello.NodeId, null);
        }
        catch (Exception error) when (error is OperationCanceledException or SocketException or ObjectDisposedException or HandshakeViolation)
        {
            return Outcome.Failed(Why(error, stopping));
        }
    }

    /// <summary>The connecting side: says hello, checks the responder's proof against the endpoint
    /// it dialed, proves itself, and waits for the welcome.</summary>
    public async Task<Outcome> InitiateAsync(Socket socket, string dialedEndpoint, CancellationToken stopping)
    {
        using var deadline = WithDeadline(stopping);
        try
        {
            var hello = new Hello(selfId, NewNonce());
            await WriteLineAsync(socket, HelloLine(hello), deadline.Token).ConfigureAwait(false);
            var challenge = ParseChallenge(await ReadLineAsync(socket, deadline.Token).ConfigureAwait(false));
            if (challenge is null) return Outcome.Failed("it did not answer HELLO with a CHALLENGE (not a FormalChat node, or one without a cluster key?)");
            var transcript = new Transcript(selfId, challenge.NodeId, dialedEndpoint, hello.Nonce, challenge.Nonce);
            if (!Verify(key, Role.Responder, transcript, challenge.Proof))
            {
                return Outcome.Failed(challenge.Endpoint == dialedEndpoint
                    ? $"node {challenge.NodeId} did not prove the cluster key (a wrong key?)"
                    : $"node {challenge.NodeId} answered for {challenge.Endpoint}, not for the {dialedEndpoint} dialed (a relay, or a --peer address that differs from that node's --host and --peer-port)");
            }
            await WriteLineAsync(socket, ProofLine(Prove(key, Role.Initiator, transcript)), deadline.Token).ConfigureAwait(false);
            if (!IsWelcome(await ReadLineAsync(socket, deadline.Token).ConfigureAwait(false))) return Outcome.Failed($"node {challenge.NodeId} refused our proof (a wrong key?)");
            return new Outcome(challenge.NodeId, null);
        }
        catch (Exception error) when (error is OperationCanceledException or SocketException or ObjectDisposedException or HandshakeViolation)
        {
            return Outcome.Failed(Why(error, stopping));
        }
    }

    private static CancellationTokenSource WithDeadline(CancellationToken stopping)
    {
        var deadline = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        deadline.CancelAfter(Deadline);
        return deadline;
    }

    private static string Why(Exception error, CancellationToken stopping) => error switch
    {
        OperationCanceledException when stopping.IsCancellationRequested => "the node is stopping",
        OperationCanceledException => $"the handshake did not finish within {Deadline.TotalSeconds:0.#} s",
        HandshakeViolation violation => violation.Message,
        _ => $"the connection failed during the handshake: {error.Message}",
    };

    private static async Task WriteLineAsync(Socket socket, string line, CancellationToken cancel)
    {
        var bytes = Encoding.ASCII.GetBytes(line + "\n");
        var sent = 0;
        while (sent < bytes.Length) sent += await socket.SendAsync(bytes.AsMemory(sent), SocketFlags.None, cancel).ConfigureAwait(false);
    }

    /// <summary>Reads one line. The other side may not have sent more than that line, so a read
    /// that brings bytes past the newline is refused rather than buffered.</summary>
    private static async Task<string> ReadLineAsync(Socket socket, CancellationToken cancel)
    {
        var buffer = new byte[MaxLineBytes + 1];
        var filled = 0;
        while (true)
        {
            var read = await socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, cancel).ConfigureAwait(false);
            if (read == 0) throw new HandshakeViolation("the other side closed the connection during the handshake");
            filled += read;
            var newline = Array.IndexOf(buffer, (byte)'\n', 0, filled);
            if (newline >= 0)
            {
                if (newline != filled - 1) throw new HandshakeViolation("it sent more than one handshake line at once (frames before the handshake finished?)");
                return Encoding.ASCII.GetString(buffer, 0, newline).TrimEnd('\r');
            }
            if (filled > MaxLineBytes) throw new HandshakeViolation($"its handshake line is longer than {MaxLineBytes} bytes");
        }
    }

    private sealed class HandshakeViolation(string message) : Exception(message);
}
