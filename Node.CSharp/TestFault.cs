using FormalChat.Protocol;
using Microsoft.FSharp.Collections;
using static FormalChat.Protocol.NodeState;
using State = FormalChat.Protocol.NodeState.NodeState;

namespace FormalChat.Node;

/// <summary>
/// Test-only: FORMALCHAT_TEST_FAULT makes this node break the spec on purpose, so that a test can
/// show trace validation rejects a wrong node. Never set outside tests.
/// <list type="bullet">
/// <item>skip-age-reset: a heartbeat leaves the sender's age where it was instead of restarting
/// it at 0 (FailureDetector.tla, RecvHeartbeat): the node goes on suspecting live peers.</item>
/// <item>forget-participant: a node that forwards a candidate does not count itself a participant
/// of the round (LCR.tla, RecvElection), so it may later put itself forward in the same round.</item>
/// <item>skip-replica-store: a backup confirms the owner's next message without keeping it
/// (Replication.tla, StoreReplica): the owner then acknowledges a message its backup lacks.</item>
/// <item>stale-placement-version: the leader keeps each placement it makes with the room's
/// previous version (Placement.tla, NewAssignment: version + 1), so a later assignment of the
/// room could lose to one it replaced.</item>
/// </list>
/// </summary>
internal static class TestFault
{
    private static readonly string? Fault = Environment.GetEnvironmentVariable("FORMALCHAT_TEST_FAULT");

    public static readonly bool Active = Fault is "skip-age-reset" or "forget-participant" or "skip-replica-store" or "stale-placement-version";

    public static State Apply(Event next, State before, State after)
    {
        var coordination = after.Coordination;
        switch (Fault, next)
        {
            case ("skip-age-reset", Event.PeerMessageReceived { Item: PeerMessage.HeartbeatSent heartbeat }):
                var from = heartbeat.Item.From.Id;
                if (!before.Coordination.Age.TryGetValue(from, out var age) || !coordination.Age.ContainsKey(from)) return after;
                return With(coordination.Age.Add(from, age), coordination.Participant);
            case ("forget-participant", Event.PeerMessageReceived { Item: PeerMessage.Election }):
                return coordination.Participant ? With(coordination.Age, participant: false) : after;
            case ("skip-replica-store", Event.PeerMessageReceived { Item: PeerMessage.ReplicaAppended }):
                return ReplicationTrace.withReplicas(before.Replicas, after);
            case ("stale-placement-version", _):
                return PlacementTrace.withPlacements(StaleVersions(before.Placements, after.Placements, after.Info.Id), after);
            default:
                return after;
        }

        // Generic in the room's type, which this file need not name.
        static FSharpMap<TRoom, Assignment> StaleVersions<TRoom>(FSharpMap<TRoom, Assignment> before, FSharpMap<TRoom, Assignment> after, int self)
            where TRoom : notnull
        {
            var placements = after;
            foreach (var (room, placement) in after)
            {
                var made = placement.Leader == self && !Equals(before.TryFind(room)?.Value, placement);
                if (made) placements = placements.Add(room, new Assignment(placement.Owner, placement.Epoch, placement.Leader, placement.Version - 1, placement.LastSeq));
            }
            return placements;
        }

        State With(FSharpMap<int, int> ages, bool participant) =>
            SpecTrace.withCoordination(
                new Coordination(coordination.Self, coordination.View, ages, coordination.Epoch, participant, coordination.Leader), after);
    }
}
