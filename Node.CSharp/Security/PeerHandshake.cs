using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace FormalChat.Node.Security;

/// <summary>
/// The messages of the peer-link handshake and the proofs they carry: pure, no sockets. Every TCP
/// peer link opens with four lines before any frame (docs/SECURITY.md, "Peer links"):
/// <code>
/// initiator → responder   FCAUTH1 HELLO &lt;initiator id&gt; &lt;initiator nonce&gt;
/// responder → initiator   FCAUTH1 CHALLENGE &lt;responder id&gt; &lt;responder peer endpoint&gt; &lt;responder nonce&gt; &lt;responder proof&gt;
/// initiator → responder   FCAUTH1 PROOF &lt;initiator proof&gt;
/// responder → initiator   FCAUTH1 WELCOME
/// </code>
/// Nonces are 32 random bytes and proofs HMAC-SHA256 values, both as lowercase hex. A proof is the
/// MAC of the whole transcript (both ids, the endpoint the initiator dialed, both nonces) under
/// the cluster key, prefixed with the prover's role: a responder's proof replayed as an
/// initiator's (a reflection) does not verify, and a fresh nonce on each side makes every proof
/// good for one link only. The endpoint binds the proof to the address the initiator meant to
/// reach, so a listener elsewhere cannot relay a real node's answer as its own.
/// </summary>
public static class PeerHandshake
{
    public const string Version = "FCAUTH1";
    public const int NonceLength = 32;

    /// <summary>Longest handshake line accepted: the challenge, with a long endpoint, fits well within it.</summary>
    public const int MaxLineBytes = 512;

    public enum Role { Initiator, Responder }

    public sealed record Hello(int NodeId, byte[] Nonce);

    public sealed record Challenge(int NodeId, string Endpoint, byte[] Nonce, byte[] Proof);

    /// <summary>What both sides prove knowledge of the key over.</summary>
    public sealed record Transcript(int InitiatorId, int ResponderId, string ResponderEndpoint, byte[] InitiatorNonce, byte[] ResponderNonce);

    public static byte[] NewNonce() => RandomNumberGenerator.GetBytes(NonceLength);

    public static string HelloLine(Hello hello) => $"{Version} HELLO {hello.NodeId} {Hex(hello.Nonce)}";

    public static string ChallengeLine(Challenge challenge) =>
        $"{Version} CHALLENGE {challenge.NodeId} {challenge.Endpoint} {Hex(challenge.Nonce)} {Hex(challenge.Proof)}";

    public static string ProofLine(byte[] proof) => $"{Version} PROOF {Hex(proof)}";

    public static string WelcomeLine => $"{Version} WELCOME";

    public static byte[] Prove(ClusterKey key, Role role, Transcript transcript)
    {
        var text = string.Join('\n',
            "formalchat peer link v1",
            role == Role.Initiator ? "initiator" : "responder",
            transcript.InitiatorId.ToString(CultureInfo.InvariantCulture),
            transcript.ResponderId.ToString(CultureInfo.InvariantCulture),
            transcript.ResponderEndpoint,
            Hex(transcript.InitiatorNonce),
            Hex(transcript.ResponderNonce));
        return key.Mac(Encoding.UTF8.GetBytes(text));
    }

    /// <summary>Compares in constant time, so the time a refusal takes tells nothing about the proof.</summary>
    public static bool Verify(ClusterKey key, Role role, Transcript transcript, byte[] proof) =>
        CryptographicOperations.FixedTimeEquals(Prove(key, role, transcript), proof);

    public static Hello? ParseHello(string line)
    {
        var words = Words(line, "HELLO", 4);
        if (words is null || !TryNodeId(words[2], out var id) || !TryHex(words[3], NonceLength, out var nonce)) return null;
        return new Hello(id, nonce);
    }

    public static Challenge? ParseChallenge(string line)
    {
        var words = Words(line, "CHALLENGE", 6);
        if (words is null || !TryNodeId(words[2], out var id)) return null;
        if (!TryHex(words[4], NonceLength, out var nonce) || !TryHex(words[5], HMACSHA256.HashSizeInBytes, out var proof)) return null;
        return new Challenge(id, words[3], nonce, proof);
    }

    public static byte[]? ParseProof(string line)
    {
        var words = Words(line, "PROOF", 3);
        return words is not null && TryHex(words[2], HMACSHA256.HashSizeInBytes, out var proof) ? proof : null;
    }

    public static bool IsWelcome(string line) => line == WelcomeLine;

    private static string[]? Words(string line, string kind, int count)
    {
        var words = line.Split(' ');
        return words.Length == count && words[0] == Version && words[1] == kind ? words : null;
    }

    private static bool TryNodeId(string text, out int id) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out id) && id >= 1;

    private static bool TryHex(string text, int bytes, out byte[] value)
    {
        value = [];
        if (text.Length != 2 * bytes) return false;
        try { value = Convert.FromHexString(text); }
        catch (FormatException) { return false; }
        return true;
    }

    private static string Hex(byte[] bytes) => Convert.ToHexString(bytes).ToLowerInvariant();
}
