using System.Text;
using FormalChat.Node.Security;

namespace FormalChat.Cluster.Tests.Security;

/// <summary>Sealing and opening heartbeat datagrams, and the replay guard: no sockets.</summary>
public class HeartbeatSealTests
{
    private const long Now = 1_764_460_000_000;
    private static readonly byte[] Json = Encoding.UTF8.GetBytes("{\"v\":1,\"type\":\"heartbeat\"}");

    [Fact]
    public void A_sealed_heartbeat_opens_with_the_same_key_and_gives_back_its_fields()
    {
        var key = ClusterKey.Generate();
        var datagram = HeartbeatSeal.Seal(key, 0xfeed, 7, Now, Json);

        var opened = HeartbeatSeal.Open(key, datagram, out var refusal);

        Assert.Null(refusal);
        Assert.Equal(new HeartbeatSeal.Opened(0xfeed, 7, Now, Encoding.UTF8.GetString(Json)), opened);
    }

    [Fact]
    public void A_heartbeat_sealed_with_another_key_is_refused()
    {
        var datagram = HeartbeatSeal.Seal(ClusterKey.Generate(), 1, 1, Now, Json);

        Assert.Null(HeartbeatSeal.Open(ClusterKey.Generate(), datagram, out var refusal));
        Assert.Contains("MAC", refusal);
    }

    [Fact]
    public void An_unsealed_heartbeat_is_refused()
    {
        Assert.Null(HeartbeatSeal.Open(ClusterKey.Generate(), Json, out var refusal));
        Assert.Contains("not sealed", refusal);
    }

    [Theory]
    [InlineData(0)]   // in the MAC
    [InlineData(90)]  // in the header (the send time)
    [InlineData(-3)]  // in the JSON
    public void Changing_any_byte_of_a_sealed_heartbeat_makes_it_refused(int offset)
    {
        var key = ClusterKey.Generate();
        var datagram = HeartbeatSeal.Seal(key, 1, 1, Now, Json);
        var at = offset >= 0 ? HeartbeatSeal.Version.Length + 1 + offset : datagram.Length + offset;
        datagram[at] ^= 0x01;

        Assert.Null(HeartbeatSeal.Open(key, datagram, out _));
    }

    [Fact]
    public void Random_and_mutated_datagrams_are_refused_without_an_exception()
    {
        var key = ClusterKey.Generate();
        var random = new Random(11);
        var sealedOne = HeartbeatSeal.Seal(key, 1, 1, Now, Json);
        for (var n = 0; n < 20_000; n++)
        {
            byte[] datagram;
            if (n % 2 == 0)
            {
                datagram = new byte[random.Next(0, 200)];
                random.NextBytes(datagram);
                if (n % 4 == 0) datagram = [.. Encoding.ASCII.GetBytes("FCHB1 "), .. datagram];
            }
            else
            {
                datagram = (byte[])sealedOne.Clone();
                datagram[random.Next(datagram.Length)] = (byte)random.Next(256);
                if (datagram.AsSpan().SequenceEqual(sealedOne)) continue;
            }
            Assert.Null(HeartbeatSeal.Open(key, datagram, out var refusal));
            Assert.NotNull(refusal);
        }
    }

    [Fact]
    public void The_replay_guard_accepts_rising_counters_and_refuses_a_counter_seen_before()
    {
        var guard = new HeartbeatReplayGuard();
        HeartbeatSeal.Opened Beat(ulong incarnation, long counter) => new(incarnation, counter, Now, "{}");

        Assert.Equal(HeartbeatReplayGuard.Verdict.Accepted, guard.Check(Beat(1, 1), Now));
        Assert.Equal(HeartbeatReplayGuard.Verdict.Accepted, guard.Check(Beat(1, 2), Now));
        Assert.Equal(HeartbeatReplayGuard.Verdict.Replayed, guard.Check(Beat(1, 2), Now));
        Assert.Equal(HeartbeatReplayGuard.Verdict.Replayed, guard.Check(Beat(1, 1), Now));
        // A restarted sender: a new incarnation, counting from 1 again.
        Assert.Equal(HeartbeatReplayGuard.Verdict.Accepted, guard.Check(Beat(2, 1), Now));
    }

    [Fact]
    public void The_replay_guard_refuses_a_heartbeat_sent_far_from_its_clock()
    {
        var guard = new HeartbeatReplayGuard();
        var old = new HeartbeatSeal.Opened(1, 1, Now - HeartbeatReplayGuard.MaxClockSkewMs - 1, "{}");

        Assert.Equal(HeartbeatReplayGuard.Verdict.Stale, guard.Check(old, Now));
    }
}
