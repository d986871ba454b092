/// Focused regression tests for the protocol bugs the replication simulation found
/// (ReplicationSimulation.fs); each names the seed that found it. They drive one node through
/// Node.step with the messages of the failing run, cut down to what matters.
module FormalChat.Protocol.Tests.SimRegressions

open Expecto
open FormalChat.Protocol
open FormalChat.Protocol.NodeState
open Xunit

let private config = { ProtocolConfig.defaults with Rebalance = None }

let private infoOf (id: NodeId) : NodeInfo = Simulation.Nodes.infoOf id

let private heartbeat (id: NodeId) (epoch: Epoch) (leader: NodeId option) : Event =
    PeerMessageReceived(HeartbeatSent { From = infoOf id; Epoch = epoch; Leader = leader; Load = Load.zero; Known = [] })

let private run (events: Event list) (state: NodeState) : NodeState * Effect list =
    events |> List.fold (fun (state, _) event -> Node.step config state event) (state, [])

let private all (events: Event list) (state: NodeState) : NodeState * Effect list =
    events |> List.fold (fun (state, effects) event -> let next, more = Node.step config state event in next, effects @ more) (state, [])

let private peer (message: PeerMessage) : Event = PeerMessageReceived message

/// The nickname registrar these regressions' nodes follow (NickRegistry.fs), newer than any
/// epoch they reach, told by its request for a report; the hello is welcomed on its grant.
let private registrarTerm : NickTerm = { Epoch = 1_000L; Leader = 3 }

let private connect (client: ClientId) (nick: string) : Event list =
    [ ClientConnected(client, $"session-{client}")
      PeerMessageReceived(NicksRequested registrarTerm)
      ClientRequested(client, Hello { Nick = nick; Session = None; Resume = []; Password = None })
      PeerMessageReceived(NickGranted { Nick = Nick nick; Session = $"session-{client}"; Previous = None; Node = 0; Term = registrarTerm }) ]

let private message (seq: int64) (from: string) : RoomMessage =
    { Room = (RoomName "#b"); Seq = seq; From = Nick from; FromNode = 1; Text = $"{from} {seq}"; ClientMessageId = seq }

let private committedOnes (effects: Effect list) : RoomMessage list =
    [ for effect in effects do
          match effect with
          | SendToPeer(_, RoomSequenced m) -> m
          | SendToClients(_, Message m) -> m
          | _ -> () ]

/// Node `self` in a view of nodes 1–3, following leader 3 in epoch 1.
let private inThree (self: NodeId) : NodeState =
    init (infoOf self) |> run [ for id in [ 1; 2; 3 ] do if id <> self then heartbeat id 1 (Some 3) ] |> fst

let ``seed 3: an owner whose room has moved on without it hearing does not commit alone`` () =
    // Node 2 owns #b (epoch 3). A leader that had stopped hearing node 2 promoted its backup, node
    // 1, and node 2 missed that; the next leader gave owner 1 a backup, and node 2 hears that.
    // Its own placement says node 2, the backup serves node 1: no backup for node 2. It used to
    // commit alone, so #b had two owners numbering the same seqs.
    let state =
        inThree 2
        |> run
            [ peer (RoomAssigned((RoomName "#b"), { Owner = 2; Epoch = 3L; Leader = 0; Version = 3; LastSeq = 0L }))
              peer (BackupAssigned((RoomName "#b"), { Backup = 2; Owner = 1; Epoch = 7L; Leader = 0; Version = 6 }))
              yield! connect 10 "u5"
              ClientRequested(10, Join "#b") ]
        |> fst

    let state, effects = Node.step config state (ClientRequested(10, Say("#b", "u5 says 20", 20L)))

    Assert.Empty(committedOnes effects)
    Assert.Equal(1, state.Primaries[(RoomName "#b")].Pending.Length)

let ``seed 1: an owner that stops hearing its backup while other nodes are live waits for a new one`` () =
    // Node 3 owns #b with backup 4, up to date. Node 3 loses node 4's heartbeats (its TCP link
    // still works) and drops it from its view; the leader still sees node 4 and assigns nothing.
    // Node 3 used to commit alone; node 4, back in its view, then counted as up to date again
    // without those messages, so a crash of node 3 would have lost them.
    let backup = { Backup = 4; Owner = 3; Epoch = 3L; Leader = 0; Version = 2 }
    let state =
        init (infoOf 3)
        |> run
            [ for id in [ 1; 2; 4 ] do heartbeat id 3 (Some 4)
              peer (RoomAssigned((RoomName "#b"), { Owner = 3; Epoch = 1L; Leader = 0; Version = 1; LastSeq = 0L }))
              peer (BackupAssigned((RoomName "#b"), backup))
              peer (ReplicaStored((RoomName "#b"), backup, 0L))
              yield! connect 10 "u6"
              ClientRequested(10, Join "#b") ]
        |> fst
    Assert.True(Replication.isUpToDate (Replication.backupTarget (RoomName "#b") state.Placements state.Backups state.Coordination) state.Primaries[(RoomName "#b")])

    let state = { state with Coordination = { state.Coordination with View = state.Coordination.View.Remove 4; Age = state.Coordination.Age.Remove 4 } }
    let state, effects = all [ ClientRequested(10, Say("#b", "u6 says 21", 21L)); Ticked ] state

    Assert.Empty(committedOnes effects)
    Assert.Equal(1, state.Primaries[(RoomName "#b")].Pending.Length)

let private isRewrite (effect: Effect) =
    match effect with
    | RewriteLog _ -> true
    | _ -> false

let ``seeds 9 and 13: the owner and the backup keep their copy when a stale owner shares a shorter history`` () =
    // Node 1, cut off by a partition, still thinks it owns #b; meanwhile its backup was promoted
    // and acknowledged more. When the partition heals node 1 introduces itself with #b's history
    // as it knew it. The real owner (seed 13) and its backup (seed 9) used to replace their copy
    // with it and lose what was acknowledged since.
    let stale = [ message 1L "ann"; message 2L "bob" ]
    let current = stale @ [ message 3L "cy"; message 4L "dee" ]

    let backup = { Backup = 2; Owner = 3; Epoch = 2L; Leader = 0; Version = 3 }
    let asBackup =
        inThree 2
        |> run [ peer (RoomAssigned((RoomName "#b"), { Owner = 3; Epoch = 2L; Leader = 0; Version = 2; LastSeq = 2L })); peer (ReplicaSynced((RoomName "#b"), backup, current, [])) ]
        |> fst
    let asOwner =
        inThree 3
        |> run
            [ peer (RoomAssigned((RoomName "#b"), { Owner = 3; Epoch = 2L; Leader = 0; Version = 2; LastSeq = 2L }))
              peer (BackupAssigned((RoomName "#b"), backup))
              peer (HistoryShared((RoomName "#b"), current))
              peer (ReplicaStored((RoomName "#b"), backup, 4L)) ]
        |> fst
    Assert.True(asOwner.Primaries.ContainsKey (RoomName "#b"))

    for state in [ asBackup; asOwner ] do
        Assert.Equal(4L, (historyOf (RoomName "#b") state).LastSeq)
        let next, effects = Node.step config state (peer (HistoryShared((RoomName "#b"), stale)))
        Assert.Equal(4L, (historyOf (RoomName "#b") next).LastSeq)
        Assert.DoesNotContain(effects, isRewrite)

let ``a node that neither owns nor backs up a room still takes the owner's copy over a disagreeing one`` () =
    // What HistoryShared is for: a node that restarted holds, from its log, a message the owner
    // never committed; the owner's history replaces it.
    let logs = [ (RoomName "#b"), [ message 1L "ann"; { message 2L "bob" with Text = "never committed" } ] ]
    let state = recover logs (init (infoOf 2)) |> run [ peer (RoomAssigned((RoomName "#b"), { Owner = 3; Epoch = 1L; Leader = 0; Version = 1; LastSeq = 0L })) ] |> fst

    let next, effects = Node.step config state (peer (HistoryShared((RoomName "#b"), [ message 1L "ann"; message 2L "bob" ])))

    Assert.Equal("bob 2", (historyOf (RoomName "#b") next).Recent.Head.Text)
    Assert.Contains(effects, isRewrite)

let private placedEffects (effects: Effect list) : (RoomName * Assignment) list =
    [ for effect in effects do
          match effect with
          | SendToPeer(_, RoomAssigned(room, placement)) -> room, placement
          | _ -> () ]

let ``seed 14: a leader cut off by a partition decides nothing while its view decays`` () =
    // Node 3 leads epoch 5; #a is owned by node 2 and backed up by node 3. A partition cuts node
    // 3 off. Node 2's last heartbeat happens to be older than node 1's, so node 2 leaves node 3's
    // view a tick before node 1 does: for that tick node 3 still sees a majority ([1; 3] of 3).
    // It used to promote itself for #a then, in epoch 5; after the heal that placement beat the
    // majority's, and node 3 numbered #a from where it had been cut off.
    let state =
        init (infoOf 3)
        |> run
            [ heartbeat 1 5 (Some 3)
              heartbeat 2 5 (Some 3)
              peer (RoomAssigned((RoomName "#a"), { Owner = 2; Epoch = 5L; Leader = 0; Version = 1; LastSeq = 0L }))
              peer (BackupAssigned((RoomName "#a"), { Backup = 3; Owner = 2; Epoch = 5L; Leader = 0; Version = 1 }))
              Ticked
              heartbeat 1 5 (Some 3) ]
        |> fst
    Assert.Equal(Some 3, state.Coordination.Leader)

    // Cut off: two more ticks and node 2 (last heard two ticks ago) is suspected, node 1 not yet.
    let state, effects = all [ Ticked; Ticked ] state

    Assert.Equal<Set<NodeId>>(set [ 1; 3 ], state.Coordination.View)
    Assert.Equal(2, state.Placements[(RoomName "#a")].Owner)
    Assert.Empty(placedEffects effects)

let ``seed 35: a node cut off from the majority starts no election, and listens again when it is back`` () =
    // Node 2, following leader 3, is cut off. It used to elect itself in its view of one (epoch
    // 2); when the partition healed it heard node 1 before node 3 and, as leader of a newer epoch
    // with a majority view, placed #lobby on itself over the majority's owner.
    let alone = inThree 2 |> run [ Ticked; Ticked; Ticked; Ticked; Ticked ] |> fst
    Assert.Equal<Set<NodeId>>(set [ 2 ], alone.Coordination.View)
    Assert.Equal(1L, alone.Coordination.Epoch)
    Assert.False(alone.Coordination.Participant)

    let back, _ = all [ heartbeat 1 1 (Some 3); Ticked ] alone

    Assert.Equal<Set<NodeId>>(set [ 1; 2 ], back.Coordination.View)
    Assert.Equal(1L, back.Coordination.Epoch)
    Assert.False(back.Coordination.Participant)
    Assert.NotEqual(Some 2, back.Coordination.Leader)

let ``seed 3: a placement request for a room whose owner left promotes its backup, as the leader's tick does`` () =
    // Node 3 leads; #lobby's owner, node 1, crashed and its backup, node 3, holds a message only
    // it and the dead owner stored. Node 2 asks for #lobby before node 3's next tick.
    // assignRoom used to place it afresh on the least-loaded node (node 2), which numbered new
    // messages over the one the backup held.
    let heard = [ heartbeat 1 1 (Some 3); heartbeat 2 1 (Some 3) ]
    let state =
        init (infoOf 3)
        |> run
            [ yield! heard
              Ticked
              yield! heard
              Ticked
              yield! heard
              peer (RoomAssigned(Rooms.lobby, { Owner = 1; Epoch = 1L; Leader = 0; Version = 1; LastSeq = 0L }))
              peer (BackupAssigned(Rooms.lobby, { Backup = 3; Owner = 1; Epoch = 1L; Leader = 0; Version = 1 }))
              peer (LeaveAnnounced 1) ]
        |> fst
    Assert.Equal(Some 3, state.Coordination.Leader)

    let state, effects = Node.step config state (peer (PlacementRequested(Rooms.lobby, 2)))

    Assert.Equal(3, state.Placements[Rooms.lobby].Owner)
    Assert.Contains((Rooms.lobby, state.Placements[Rooms.lobby]), placedEffects effects)

let private sharedHistories (effects: Effect list) : RoomName list =
    [ for effect in effects do
          match effect with
          | SendToPeer(_, HistoryShared(room, _)) -> room
          | _ -> () ]

let ``seed 166: a node back from a partition introduces itself without the history of rooms it may have lost`` () =
    // Node 3 owned #b when a partition cut it off; the leader promoted #b's backup, which went on.
    // When the partition healed node 3, not yet aware, introduced itself to node 2 with #b's
    // history as it knew it. Node 2 (neither owner nor backup) took it, dropped three committed
    // messages, and the client that resumed there never saw them.
    let owner =
        inThree 3
        |> run
            [ peer (RoomAssigned((RoomName "#b"), { Owner = 3; Epoch = 1L; Leader = 0; Version = 1; LastSeq = 0L }))
              peer (HistoryShared((RoomName "#b"), [ message 1L "ann"; message 2L "bob" ]))
              Ticked
              Ticked ]
        |> fst
    let _, effects = Node.step config owner (peer (UsersRequested 2))
    Assert.Equal<RoomName list>([ (RoomName "#b") ], sharedHistories effects)

    let cutOff = owner |> run [ Ticked; Ticked; Ticked; Ticked ] |> fst
    Assert.Equal<Set<NodeId>>(set [ 3 ], cutOff.Coordination.View)

    let back, effects = all [ heartbeat 2 1 (Some 3); heartbeat 1 1 (Some 3) ] cutOff

    Assert.Equal<Set<NodeId>>(set [ 1; 2; 3 ], back.Coordination.View)
    Assert.Empty(sharedHistories effects)
    Assert.Equal(3, back.Placements[(RoomName "#b")].Owner)

let ``seed 1506: a node that wins an election right after regaining a majority decides nothing before it has listened`` () =
    // Node 5 was cut off and is back; it has heard nodes 3 and 4, not yet node 2, #lobby's owner.
    // Being the highest id it wins the election node 4 starts. It used to re-place #lobby at once
    // (epoch 5, over the majority's owner, numbering from where it had been cut off).
    let state =
        init (infoOf 5)
        |> run
            [ for id in [ 1; 2; 3; 4 ] do heartbeat id 4 (Some 4)
              peer (RoomAssigned(Rooms.lobby, { Owner = 2; Epoch = 1L; Leader = 0; Version = 1; LastSeq = 0L }))
              peer (BackupAssigned(Rooms.lobby, { Backup = 3; Owner = 2; Epoch = 1L; Leader = 0; Version = 1 }))
              Ticked
              Ticked
              Ticked
              Ticked ]
        |> fst
    Assert.Equal<Set<NodeId>>(set [ 5 ], state.Coordination.View)

    let state, effects =
        all [ heartbeat 3 4 (Some 4); heartbeat 4 4 (Some 4); peer (Election { Candidate = 5; Epoch = 5L }); Ticked ] state

    Assert.Equal(Some 5, state.Coordination.Leader)
    Assert.Equal(2, state.Placements[Rooms.lobby].Owner)
    // Its introductions to nodes 3 and 4 name the old placement; no new one is made.
    Assert.All(placedEffects effects, fun (_, placement) -> Assert.Equal(2, placement.Owner))

let ``seed 583: an owner sends its state again when the backup has not confirmed it for K ticks, even with nothing pending`` () =
    // #a's new owner synced its backup, node 1, but the transfer reached node 1 before the
    // leader's news that node 2 owns #a, so node 1 ignored it. With nothing pending the owner
    // never sent it again, and #a stayed without an up-to-date backup.
    let backup = { Backup = 1; Owner = 2; Epoch = 1L; Leader = 0; Version = 3 }
    let syncs (effects: Effect list) =
        effects |> List.filter (function SendToPeer(_, ReplicaSynced _) -> true | _ -> false) |> List.length
    let state, effects =
        inThree 2
        |> all [ peer (RoomAssigned((RoomName "#a"), { Owner = 2; Epoch = 1L; Leader = 0; Version = 1; LastSeq = 0L })); peer (BackupAssigned((RoomName "#a"), backup)) ]
    Assert.Equal(1, syncs effects)

    // K ticks without a confirmation, as long as a silent peer is given (a busy backup is late).
    let state =
        [ 1 .. config.SuspectAfter ]
        |> List.fold (fun state _ ->
            let state, effects = all [ Ticked; heartbeat 1 1 (Some 3); heartbeat 3 1 (Some 3) ] state
            Assert.Equal(0, syncs effects)
            state) state
    let _, effects = Node.step config state Ticked

    Assert.Equal(1, syncs effects)

let private writes (effects: Effect list) : RoomMessage list =
    [ for effect in effects do
          match effect with
          | AppendToLog(_, messages) -> yield! messages
          | _ -> () ]

let ``seed 3853: the owner writes a message to its log when it commits it, not when it numbers it`` () =
    // #lobby's owner numbered two posts, wrote them to its log and stopped before its backup had
    // stored them; the promoted backup numbered other posts 1 and 2. The old owner restarted, read
    // its log back, and a client joining there was shown its uncommitted 1 and 2 as history.
    let backup = { Backup = 1; Owner = 2; Epoch = 1L; Leader = 0; Version = 1 }
    let state =
        inThree 2
        |> run
            [ peer (RoomAssigned(Rooms.lobby, { Owner = 2; Epoch = 1L; Leader = 0; Version = 1; LastSeq = 0L }))
              peer (BackupAssigned(Rooms.lobby, backup))
              peer (ReplicaStored(Rooms.lobby, backup, 0L)) ]
        |> fst

    let numbered, effects = Node.step config state (peer (RoomPosted { Room = Rooms.lobby; From = Nick "u1"; FromNode = 3; Text = "hi"; ClientMessageId = 1L }))
    Assert.Empty(writes effects)
    Assert.Equal(1, numbered.Primaries[Rooms.lobby].Pending.Length)

    let _, effects = Node.step config numbered (peer (ReplicaStored(Rooms.lobby, backup, 1L)))
    Assert.Equal<int64 list>([ 1L ], writes effects |> List.map _.Seq)

let ``seed 7997: a backup that confirms less than the owner committed is sent the state again, not counted up to date`` () =
    // #lobby moved to node 2 with a new backup, node 3. Node 2's state transfer (#lobby up to
    // 136) reached node 3 before the leader's news that node 2 owns #lobby, and node 3 ignored
    // it; it answered node 2's next append with "I hold up to 135". Node 2 counted that as the
    // confirmation of its transfer: a backup up to date that lacked the acknowledged #136.
    let committed = [ for seq in 1L .. 3L -> message seq "ann" ]
    let backup = { Backup = 3; Owner = 2; Epoch = 1L; Leader = 0; Version = 4 }
    let state =
        inThree 2
        |> run
            [ peer (RoomAssigned((RoomName "#b"), { Owner = 2; Epoch = 1L; Leader = 0; Version = 2; LastSeq = 0L }))
              peer (HistoryShared((RoomName "#b"), committed))
              peer (BackupAssigned((RoomName "#b"), backup)) ]
        |> fst
    Assert.Equal(3L, (historyOf (RoomName "#b") state).LastSeq)
    let target = Replication.backupTarget (RoomName "#b") state.Placements state.Backups state.Coordination

    let state, effects = Node.step config state (peer (ReplicaStored((RoomName "#b"), backup, 2L)))

    Assert.False(Replication.isUpToDate target state.Primaries[(RoomName "#b")])
    Assert.Contains(effects, fun effect -> match effect with SendToPeer(_, ReplicaSynced((RoomName "#b"), _, sent, _)) -> sent.Length = 3 | _ -> false)

let ``the stall (TLC, MCReplication3Fresh): an owner syncs a new leader's assignment that repeats the old one's version at once, not K ticks later`` () =
    // Node 1 owns #b. Leader 3 assigned backup 2 at (epoch 1, version 1) and died; the new leader
    // 2 assigned itself at (epoch 2, version 1). Node 1 synced the first; the second came with the
    // same version, so node 1 saw nothing new to sync and its posts waited for
    // resyncIfStalled's K ticks (the spec, without that resync, stalled for ever).
    let old = { Backup = 2; Owner = 1; Epoch = 1L; Leader = 0; Version = 1 }
    let state, effects =
        inThree 1
        |> all
            [ peer (RoomAssigned((RoomName "#b"), { Owner = 1; Epoch = 1L; Leader = 0; Version = 1; LastSeq = 0L }))
              peer (BackupAssigned((RoomName "#b"), old)) ]
    Assert.Contains(effects, fun effect -> match effect with SendToPeer(_, ReplicaSynced((RoomName "#b"), backup, _, _)) -> backup = old | _ -> false)

    let renewed = { old with Epoch = 2L }
    let state, effects = Node.step config state (peer (BackupAssigned((RoomName "#b"), renewed)))

    Assert.Contains(effects, fun effect -> match effect with SendToPeer(_, ReplicaSynced((RoomName "#b"), backup, _, _)) -> backup = renewed | _ -> false)
    Assert.Equal(Some renewed, state.Primaries[(RoomName "#b")].Synced)

// ---------------------------------------------------------------------------------------------

[<Tests>]
let tests =
    testList "SimRegressions" [
        testCase "the stall (TLC, MCReplication3Fresh): an owner syncs a new leader's assignment that repeats the old one's version at once, not K ticks later"
            ``the stall (TLC, MCReplication3Fresh): an owner syncs a new leader's assignment that repeats the old one's version at once, not K ticks later``
        testCase "seed 3: an owner whose room has moved on without it hearing does not commit alone"
            ``seed 3: an owner whose room has moved on without it hearing does not commit alone``
        testCase "seed 1: an owner that stops hearing its backup while other nodes are live waits for a new one"
            ``seed 1: an owner that stops hearing its backup while other nodes are live waits for a new one``
        testCase "seeds 9 and 13: the owner and the backup keep their copy when a stale owner shares a shorter history"
            ``seeds 9 and 13: the owner and the backup keep their copy when a stale owner shares a shorter history``
        testCase "a node that neither owns nor backs up a room still takes the owner's copy over a disagreeing one"
            ``a node that neither owns nor backs up a room still takes the owner's copy over a disagreeing one``
        testCase "seed 14: a leader cut off by a partition decides nothing while its view decays"
            ``seed 14: a leader cut off by a partition decides nothing while its view decays``
        testCase "seed 35: a node cut off from the majority starts no election, and listens again when it is back"
            ``seed 35: a node cut off from the majority starts no election, and listens again when it is back``
        testCase "seed 3: a placement request for a room whose owner left promotes its backup, as the leader's tick does"
            ``seed 3: a placement request for a room whose owner left promotes its backup, as the leader's tick does``
        testCase "seed 166: a node back from a partition introduces itself without the history of rooms it may have lost"
            ``seed 166: a node back from a partition introduces itself without the history of rooms it may have lost``
        testCase "seed 1506: a node that wins an election right after regaining a majority decides nothing before it has listened"
            ``seed 1506: a node that wins an election right after regaining a majority decides nothing before it has listened``
        testCase "seed 583: an owner sends its state again when the backup has not confirmed it for K ticks, even with nothing pending"
            ``seed 583: an owner sends its state again when the backup has not confirmed it for K ticks, even with nothing pending``
        testCase "seed 3853: the owner writes a message to its log when it commits it, not when it numbers it"
            ``seed 3853: the owner writes a message to its log when it commits it, not when it numbers it``
        testCase "seed 7997: a backup that confirms less than the owner committed is sent the state again, not counted up to date"
            ``seed 7997: a backup that confirms less than the owner committed is sent the state again, not counted up to date``
    ]
