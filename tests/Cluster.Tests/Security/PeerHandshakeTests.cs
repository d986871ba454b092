using FormalChat.Node.Security;
using static FormalChat.Node.Security.PeerHandshake;

namespace FormalChat.Cluster.Tests.Security;

/// <summary>The handshake's messages and proofs: no sockets.</summary>
public class PeerHandshakeTests
{
    private static Transcript NewTranscript(string endpoint = "127.0.0.1:6002") => new(1, 2, endpoint, NewNonce(), NewNonce());

    [Fact]
    public void A_proof_made_with_the_key_verifies_for_the_same_role_and_transcript()
    {
        var key = ClusterKey.Generate();
        var transcript = NewTranscript();

        Assert.True(Verify(key, Role.Initiator, transcript, Prove(key, Role.Initiator, transcript)));
        Assert.True(Verify(key, Role.Responder, transcript, Prove(key, Role.Responder, transcript)));
    }

    [Fact]
    public void A_reflected_proof_does_not_verify_for_the_other_role()
    {
        var key = ClusterKey.Generate();
        var transcript = NewTranscript();

        Assert.False(Verify(key, Role.Initiator, transcript, Prove(key, Role.Responder, transcript)));
    }

    [Fact]
    public void A_proof_made_with_another_key_or_for_another_link_does_not_verify()
    {
        var key = ClusterKey.Generate();
        var transcript = NewTranscript();
        var proof = Prove(key, Role.Initiator, transcript);

        Assert.False(Verify(ClusterKey.Generate(), Role.Initiator, transcript, proof));
        Assert.False(Verify(key, Role.Initiator, transcript with { ResponderNonce = NewNonce() }, proof));
        Assert.False(Verify(key, Role.Initiator, transcript with { InitiatorId = 3 }, proof));
        Assert.False(Verify(key, Role.Initiator, transcript with { ResponderEndpoint = "127.0.0.1:9999" }, proof));
    }

    [Fact]
    public void Handshake_lines_parse_back_to_what_was_built()
    {
        var hello = new Hello(4, NewNonce());
        var challenge = new Challenge(5, "127.0.0.1:6005", NewNonce(), Prove(ClusterKey.Generate(), Role.Responder, NewTranscript()));
        var proof = Prove(ClusterKey.Generate(), Role.Initiator, NewTranscript());

        Assert.Equal(hello.NodeId, ParseHello(HelloLine(hello))!.NodeId);
        Assert.Equal(hello.Nonce, ParseHello(HelloLine(hello))!.Nonce);
        var parsed = ParseChallenge(ChallengeLine(challenge))!;
        Assert.Equal((challenge.NodeId, challenge.Endpoint), (parsed.NodeId, parsed.Endpoint));
        Assert.Equal(challenge.Nonce, parsed.Nonce);
        Assert.Equal(challenge.Proof, parsed.Proof);
        Assert.Equal(proof, ParseProof(ProofLine(proof)));
        Assert.True(IsWelcome(WelcomeLine));
    }

    [Theory]
    [InlineData("{\"v\":1,\"type\":\"sequenced\"}")]
    [InlineData("FCAUTH1 HELLO 0 00")]
    [InlineData("FCAUTH1 HELLO -1 0000000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("FCAUTH1 HELLO 1 zz00000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("FCAUTH2 HELLO 1 0000000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("FCAUTH1 HELLO 1 0000000000000000000000000000000000000000000000000000000000000000 extra")]
    public void Anything_but_a_well_formed_hello_is_not_a_hello(string line)
    {
        Assert.Null(ParseHello(line));
    }
}
