using FormalChat.Protocol;
using Microsoft.FSharp.Collections;
using static FormalChat.Protocol.NodeState;
using State = FormalChat.Protocol.NodeState.NodeState;

namespace FormalChat.Node;

/// <summary>
/// Test-only: FORMALCHAT_TEST_FAULT=skip-age-reset makes this node break the spec on purpose, so
/// that a test can show trace validation rejects a wrong node. A heartbeat then leaves the
/// sender's age where it was instead of restarting it at 0 (FailureDetector.tla, RecvHeartbeat):
/// the node goes on suspecting peers that are alive. Never set outside tests.
/// </summary>
internal static class TestFault
{
    public static readonly bool SkipsAgeReset =
        Environment.GetEnvironmentVariable("FORMALCHAT_TEST_FAULT") == "skip-age-reset";

    public static State Apply(Event next, State before, State after)
    {
        if (!SkipsAgeReset || next is not Event.PeerMessageReceived { Item: PeerMessage.HeartbeatSent heartbeat }) return after;
        var from = heartbeat.Item.From.Id;
        var coordination = after.Coordination;
        if (!before.Coordination.Age.TryGetValue(from, out var age) || !coordination.Age.ContainsKey(from)) return after;
        var kept = new Coordination(coordination.Self, coordination.View, coordination.Age.Add(from, age),
            coordination.Epoch, coordination.Participant, coordination.Leader);
        return SpecTrace.withCoordination(kept, after);
    }
}
