/// Primary–backup replication (Replication.fs, docs/REPLICATION.md): the pure functions, then
/// whole nodes through Node.step: nothing is shown before the backup stores it, the backup
/// writes before it confirms, the leader promotes the backup when the owner dies, and a node
/// cut off from the majority commits nothing.
module FormalChat.Protocol.Tests.ReplicationTests

open Expecto
open FormalChat.Protocol
open FormalChat.Protocol.NodeState
open FormalChat.Protocol.Tests.Simulation
open Xunit

let private message (seq: int64) (id: int64) : RoomMessage =
    { Room = (RoomName "#dev"); Seq = seq; From = Nick "ann"; FromNode = 1; Text = $"m{seq}"; ClientMessageId = id }

let private post (id: int64) : RoomPost =
    { Room = (RoomName "#dev"); From = Nick "ann"; FromNode = 1; Text = $"post {id}"; ClientMessageId = id }

let private placement = { Owner = 1; Epoch = 1L; Leader = 0; Version = 1; LastSeq = 0L }
let private backupOn (node: NodeId) (version: int) = { Backup = node; Owner = 1; Epoch = 1L; Leader = 0; Version = version }

let private coordination (self: NodeId) (view: NodeId list) (leader: NodeId) : Coordination =
    { Coordination.init self with View = Set.ofList view; Leader = Some leader; Epoch = 1L }

// ---------------------------------------------------------------------------------------------
// The pure functions.

let ``hasQuorum: a majority of the known nodes, or a cluster of at most two`` () =
    Assert.True(Replication.hasQuorum 3 (coordination 1 [ 1; 2 ] 2))
    Assert.False(Replication.hasQuorum 3 (coordination 1 [ 1 ] 1))
    Assert.False(Replication.hasQuorum 4 (coordination 1 [ 1; 2 ] 2))
    Assert.True(Replication.hasQuorum 2 (coordination 1 [ 1 ] 1))
    Assert.True(Replication.hasQuorum 1 (coordination 1 [ 1 ] 1))

/// A replica of #dev holding `history`, owning the room with `primary`.
let private owning (history: RoomMessage list) (primary: Replication.Primary) : Replication.Replica =
    { Replication.emptyReplica with History = Rooms.ofMessages history; Primary = Some primary }

let private primaryOf (replica: Replication.Replica) = replica.Primary.Value

let private committedBy (outputs: Replication.ReplicaOutput list) : RoomMessage list =
    outputs |> List.choose (function Replication.SentToInterested message -> Some message | _ -> None)

let private sentBy (outputs: Replication.ReplicaOutput list) : Sent list =
    outputs |> List.choose (function Replication.SentTo sent -> Some sent | _ -> None)

let ``sequencePost: numbers continue after history and pending, and a retry is recognised either way`` () =
    let replica = owning [ message 1L 11L; message 2L 12L ] Replication.emptyPrimary

    let replica, first, _ = Replication.sequencePost (post 21L) placement replica
    let replica, second, _ = Replication.sequencePost (post 22L) placement replica
    let _, retryPending, _ = Replication.sequencePost (post 21L) placement replica
    let _, retryCommitted, _ = Replication.sequencePost { post 12L with Text = "m2" } placement replica

    Assert.Equal<int64 list>([ 3L; 4L ], (primaryOf replica).Pending.Messages |> List.map _.Seq)
    Assert.True(match first, second with Replication.Sequenced a, Replication.Sequenced b -> a.Seq = 3L && b.Seq = 4L | _ -> false)
    Assert.Equal(Replication.AlreadyPending, retryPending)
    Assert.Equal(Replication.AlreadyCommitted(message 2L 12L), retryCommitted)

let ``commit: everything without a backup only when alone, what the backup stored with one, nothing without a quorum`` () =
    let replica = owning [] { Replication.emptyPrimary with Pending = Uncommitted.ofList [ message 1L 1L; message 2L 2L; message 3L 3L ] }
    let synced = owning [] { primaryOf replica with Synced = Some(backupOn 2 4); Stored = Some 2L }

    Assert.Equal(3, (committedBy (snd (Replication.commit true true None replica))).Length)
    // Other nodes live and no backup yet (a new room, or its backup just died): wait for one.
    let kept, waiting = Replication.commit true false None replica
    Assert.Empty(committedBy waiting)
    Assert.Equal<int64 list>([ 1L; 2L; 3L ], (primaryOf kept).Pending.Messages |> List.map _.Seq)
    Assert.Empty(committedBy (snd (Replication.commit false true None replica)))
    Assert.Empty(committedBy (snd (Replication.commit true false (Some(backupOn 2 4)) replica)))
    let rest, outputs = Replication.commit true false (Some(backupOn 2 4)) synced
    Assert.Equal<int64 list>([ 1L; 2L ], committedBy outputs |> List.map _.Seq)
    Assert.Equal<int64 list>([ 3L ], (primaryOf rest).Pending.Messages |> List.map _.Seq)
    // The owner writes what it commits, and only that, in one write before it sends.
    Assert.Equal<Replication.ReplicaOutput list>(
        [ Replication.LogAppended [ message 1L 1L; message 2L 2L ]
          Replication.Delivered(message 1L 1L); Replication.SentToInterested(message 1L 1L)
          Replication.Delivered(message 2L 2L); Replication.SentToInterested(message 2L 2L) ],
        outputs)
    // A confirmation for an earlier backup counts for nothing.
    Assert.Empty(committedBy (snd (Replication.commit true false (Some(backupOn 3 5)) synced)))

let ``syncBackup: a new backup gets the history and the pending messages once, and nothing commits until it confirms`` () =
    let replica = owning [ message 1L 1L ] { Replication.emptyPrimary with Pending = Uncommitted.ofList [ message 2L 2L ] }

    let synced, sent = Replication.syncBackup (Some(backupOn 2 1)) (RoomName "#dev") replica
    let _, again = Replication.syncBackup (Some(backupOn 2 1)) (RoomName "#dev") synced

    Assert.Equal<Sent list>([ { To = 2; Message = ReplicaSynced((RoomName "#dev"), backupOn 2 1, [ message 1L 1L ], [ message 2L 2L ]) } ], sentBy sent)
    Assert.Empty(again)
    Assert.False(Replication.isUpToDate (Some(backupOn 2 1)) (primaryOf synced))
    Assert.True(Replication.isUpToDate (Some(backupOn 2 1)) (primaryOf (fst (Replication.recvStored (backupOn 2 1) 2L synced))))
    Assert.False(Replication.isUpToDate (Some(backupOn 2 1)) (primaryOf (fst (Replication.recvStored (backupOn 2 7) 2L synced))))

/// The stall TLC found in MCReplication3Fresh (EventuallyDrained, spec/README.md, Replication):
/// the dying leader assigned owner 1's backup 2 at (epoch 1, version 1), and the owner sent it
/// its state; the backup had already taken the new leader's assignment of the same backup at
/// (epoch 2, version 1) and ignored that state. When the owner adopts (epoch 2, version 1) it
/// must send the state again: comparing versions only, it saw nothing new and its posts stayed
/// pending until resyncIfStalled, K ticks later.
let ``syncBackup: a new leader's assignment with the old one's version is synced again (the stall)`` () =
    let old = { Backup = 2; Owner = 1; Epoch = 1L; Leader = 0; Version = 1 }
    let renewed = { old with Epoch = 2L }
    let replica = owning [ message 1L 1L ] { Replication.emptyPrimary with Pending = Uncommitted.ofList [ message 2L 2L; message 3L 3L ] }

    // init: the owner synced the old assignment; the backup never confirmed it.
    let synced, _ = Replication.syncBackup (Some old) (RoomName "#dev") replica
    // act: the owner's backup target is now the new leader's assignment.
    let resynced, sent = Replication.syncBackup (Some renewed) (RoomName "#dev") synced

    // check: the state goes to the backup again, under the new assignment ...
    Assert.Equal<Sent list>([ { To = 2; Message = ReplicaSynced((RoomName "#dev"), renewed, [ message 1L 1L ], [ message 2L 2L; message 3L 3L ]) } ], sentBy sent)
    Assert.Equal(Some renewed, (primaryOf resynced).Synced)
    // ... a late confirmation for the old assignment counts for nothing ...
    let stale, _ = Replication.recvStored old 3L resynced
    Assert.Empty(committedBy (snd (Replication.commit true false (Some renewed) stale)))
    // ... and the backup's confirmation of the new one commits both pending posts at once.
    let confirmed, _ = Replication.recvStored renewed 3L stale
    Assert.Equal<int64 list>([ 2L; 3L ], committedBy (snd (Replication.commit true false (Some renewed) confirmed)) |> List.map _.Seq)

let ``recvStored: a backup confirming less than the owner committed is sent the state again; one beyond what it sequenced is ignored`` () =
    let replica = owning [ message 1L 1L; message 2L 2L ] { Replication.emptyPrimary with Pending = Uncommitted.ofList [ message 3L 3L ]; Synced = Some(backupOn 2 1); Stored = Some 2L }

    let behind, none = Replication.recvStored (backupOn 2 1) 1L replica
    let beyond, warned = Replication.recvStored (backupOn 2 1) 9L replica

    Assert.Empty(none)
    Assert.Equal(None, (primaryOf behind).Synced)
    Assert.Equal(replica, beyond)
    Assert.Equal<Replication.ReplicaOutput list>([ Replication.StoredBeyondSequenced(9L, 3L) ], warned)

let ``storeReplica: only the message right after what the backup holds, written before it is confirmed`` () =
    let backup = { backupOn 2 1 with Owner = 1 }
    let replica = { Replication.emptyReplica with History = Rooms.ofMessages [ message 1L 1L; message 2L 2L ]; Durable = 2L }

    let stored, outputs = Replication.storeReplica true (RoomName "#dev") backup [ message 3L 3L ] replica
    let skipped, refused = Replication.storeReplica true (RoomName "#dev") backup [ message 5L 5L ] replica
    let _, stale = Replication.storeReplica false (RoomName "#dev") backup [ message 3L 3L ] replica

    Assert.Equal<RoomMessage list>([ message 3L 3L ], stored.Stored.Messages)
    Assert.Equal<Replication.ReplicaOutput list>(
        [ Replication.LogAppended [ message 3L 3L ]; Replication.SentTo { To = 1; Message = ReplicaStored((RoomName "#dev"), backup, 3L) } ], outputs)
    Assert.Equal(replica, skipped)
    Assert.Equal<Replication.ReplicaOutput list>([ Replication.SentTo { To = 1; Message = ReplicaStored((RoomName "#dev"), backup, 2L) } ], refused)
    Assert.Empty(stale)

let ``storeReplica: a batch is stored with one write and confirmed once, up to its last message`` () =
    let backup = { backupOn 2 1 with Owner = 1 }
    let replica = { Replication.emptyReplica with History = Rooms.ofMessages [ message 1L 1L ]; Durable = 1L }

    let stored, outputs = Replication.storeReplica true (RoomName "#dev") backup [ message 2L 2L; message 3L 3L; message 4L 4L ] replica

    Assert.Equal<int64 list>([ 2L; 3L; 4L ], stored.Stored.Messages |> List.map _.Seq)
    Assert.Equal<Replication.ReplicaOutput list>(
        [ Replication.LogAppended [ message 2L 2L; message 3L 3L; message 4L 4L ]
          Replication.SentTo { To = 1; Message = ReplicaStored((RoomName "#dev"), backup, 4L) } ],
        outputs)

let ``sendAppends: the owner keeps at most the window in flight, and what arrives meanwhile goes in one append`` () =
    let backup = backupOn 2 1
    let synced = { Replication.emptyPrimary with Synced = Some backup; Stored = Some 0L }
    let replica = owning [] synced
    let sequence (id: int64) replica =
        let replica, _, _ = Replication.sequencePost (post id) placement replica
        replica
    let appended (outputs: Replication.ReplicaOutput list) =
        sentBy outputs |> List.map (fun sent -> match sent.Message with ReplicaAppended(_, _, messages) -> messages |> List.map _.Seq | other -> failwith $"{other}")

    let first, sentFirst = Replication.sendAppends 1 (Some backup) (RoomName "#dev") (sequence 21L replica)
    let full, whileFull = Replication.sendAppends 1 (Some backup) (RoomName "#dev") (first |> sequence 22L |> sequence 23L)
    let confirmed, _ = Replication.recvStored backup 1L full
    let _, batch = Replication.sendAppends 1 (Some backup) (RoomName "#dev") confirmed

    Assert.Equal<int64 list list>([ [ 1L ] ], appended sentFirst)
    Assert.Equal<int64 list>([ 1L ], (primaryOf first).InFlight)
    Assert.Empty(whileFull)
    Assert.Equal<int64 list list>([ [ 2L; 3L ] ], appended batch)
    // Nothing goes before the backup has confirmed the state it was sent.
    let _, unsynced = Replication.sendAppends 1 (Some backup) (RoomName "#dev") (owning [] { synced with Stored = None } |> sequence 21L)
    Assert.Empty(unsynced)

/// Mutant (b) of issue 9: a backup that kept its own never-committed copy on disk instead of the
/// owner's committed message would read it back, as history, after a restart.
let ``deliverSequenced: a committed message that differs from the stored copy rewrites the log without that copy`` () =
    let mine = { message 3L 3L with Text = "never committed" }
    let replica = { Replication.emptyReplica with History = Rooms.ofMessages [ message 1L 1L; message 2L 2L ]; Stored = Uncommitted.ofList [ mine ]; Durable = 3L }

    let delivered, outputs = Replication.deliverSequenced (message 3L 4L) replica

    Assert.Empty(delivered.Stored)
    Assert.Equal<Replication.ReplicaOutput list>(
        [ Replication.LogReplaced [ message 1L 1L; message 2L 2L; message 3L 4L ]; Replication.Delivered(message 3L 4L) ], outputs)

/// Mutant (a) of issue 9: a node that stops owning a room while it held pending messages (stored
/// as the backup before it was promoted, so on disk) must rewrite its log without them.
let ``takeOwnership: a node that stops owning a room with pending messages rewrites its log without them`` () =
    let replica =
        { Replication.emptyReplica with
            History = Rooms.ofMessages [ message 1L 1L ]
            Stored = Uncommitted.ofList [ message 2L 2L ]
            Durable = 2L }

    let owner, _ = Replication.takeOwnership true replica
    let released, outputs = Replication.takeOwnership false owner

    Assert.Equal<RoomMessage list>([ message 2L 2L ], (primaryOf owner).Pending.Messages)
    Assert.Empty(owner.Stored)
    Assert.Equal(None, released.Primary)
    Assert.Equal<Replication.ReplicaOutput list>([ Replication.LogReplaced [ message 1L 1L ] ], outputs)
    Assert.Equal(1L, released.Durable)

/// What TLC found with NoUncommittedInLog (MCReplication3LeaderOwns): the backup stored 1@1 of
/// an owner that died before committing it; the new owner never had it and syncs the backup with
/// nothing. Keeping 1@1 in the log would make a restart read it back as committed history.
let ``recvSync: a stored copy the new owner does not send again is rewritten out of the log`` () =
    let backup = { backupOn 1 2 with Owner = 2; Epoch = 2L }
    let replica = { Replication.emptyReplica with Stored = Uncommitted.ofList [ message 1L 1L ]; Durable = 1L }

    let synced, outputs = Replication.recvSync true (RoomName "#dev") backup [] [] replica
    let kept, written = Replication.recvSync true (RoomName "#dev") backup [] [ message 1L 1L; message 2L 2L ] replica

    Assert.Empty(synced.Stored)
    Assert.Equal<Replication.ReplicaOutput list>(
        [ Replication.LogReplaced []; Replication.SentTo { To = 2; Message = ReplicaStored((RoomName "#dev"), backup, 0L) } ], outputs)
    Assert.Equal(0L, synced.Durable)
    // The owner sends the copy again: only what is new is appended.
    Assert.Equal<Replication.ReplicaOutput list>(
        [ Replication.LogAppended [ message 2L 2L ]; Replication.SentTo { To = 2; Message = ReplicaStored((RoomName "#dev"), backup, 2L) } ], written)
    Assert.Equal<RoomMessage list>([ message 1L 1L; message 2L 2L ], kept.Stored.Messages)

let ``Uncommitted.addAll: the same queue as adding each message in turn`` () =
    let addEach batch queue = batch |> List.fold (fun queue message -> Uncommitted.add message queue) queue
    let batches =
        [ [ message 1L 1L; message 2L 2L ]
          [ message 3L 3L; message 4L 4L; message 5L 5L ]
          // Not after the newest held: one replaced, as add does.
          [ message 4L 9L ]
          [] ]
    for start in [ Uncommitted.empty; Uncommitted.ofList [ message 1L 1L ]; Uncommitted.ofList [ message 1L 1L; message 2L 2L ] ] do
        let mutable added = start
        let mutable expected = start
        for batch in batches do
            added <- Uncommitted.addAll batch added
            expected <- addEach batch expected
            Assert.Equal<RoomMessage list>(expected.Messages, added.Messages)
            Assert.Equal(expected.Length, added.Length)
            Assert.Equal(expected.LastSeq, added.LastSeq)
            Assert.Equal(Uncommitted.tryFirst expected, Uncommitted.tryFirst added)

let ``recvSequenced: a message that skips numbers is held back and the owner asked once`` () =
    let replica = { Replication.emptyReplica with History = Rooms.ofMessages [ message 1L 1L ]; Durable = 1L }

    let waiting, asked = Replication.recvSequenced (message 3L 3L) replica
    let stillWaiting, again = Replication.recvSequenced (message 4L 4L) waiting
    let filled, _ = Replication.adoptHistory [ message 2L 2L; message 3L 3L; message 4L 4L ] stillWaiting

    Assert.Equal<Replication.ReplicaOutput list>([ Replication.FillRequested ], asked)
    Assert.Empty(again)
    Assert.Equal(1L, stillWaiting.History.LastSeq)
    Assert.False(filled.AwaitingFill)
    Assert.Equal(4L, filled.History.LastSeq)

let ``assignBackup: the leader picks the least-loaded other live node and never the owner`` () =
    let placements = Map.ofList [ (RoomName "#dev"), placement; (RoomName "#ops"), { placement with Owner = 2 } ]
    let leader = coordination 3 [ 1; 2; 3 ] 3

    let backups, sent = Replication.assignBackups (fun _ -> 0) placements Map.empty leader

    Assert.Equal(3, backups[(RoomName "#dev")].Backup)
    Assert.Equal(1, backups[(RoomName "#ops")].Backup)
    Assert.Equal(4, sent.Length)
    Assert.True(backups |> Map.forall (fun room backup -> backup.Owner = placements[room].Owner && backup.Owner <> backup.Backup))

let ``promoteBackup: an owner gone from the view is replaced by its live backup, with a newer placement`` () =
    let placements = Map.ofList [ (RoomName "#dev"), placement ]
    let backups = Map.ofList [ (RoomName "#dev"), backupOn 2 1 ]

    let promoted, _ = Replication.promoteBackup 9L (RoomName "#dev") placements backups { coordination 3 [ 2; 3 ] 3 with Epoch = 2L }
    let unchanged, none = Replication.promoteBackup 9L (RoomName "#dev") placements backups (coordination 3 [ 1; 2; 3 ] 3)

    Assert.Equal({ Owner = 2; Epoch = 2L; Leader = 3; Version = 2; LastSeq = 9L }, promoted[(RoomName "#dev")])
    Assert.Equal<Placement.Placements>(placements, unchanged)
    Assert.Empty(none)

let ``adopt: the owner's messages extend an agreeing history and replace a disagreeing one`` () =
    let history = Rooms.ofMessages [ message 1L 1L; message 2L 2L ]

    Assert.Equal(Rooms.Extends [ message 3L 3L ], Rooms.adopt [ message 2L 2L; message 3L 3L ] history)
    match Rooms.adopt [ message 1L 1L; { message 2L 2L with Text = "other" } ] history with
    | Rooms.Replaces replaced -> Assert.Equal("other", replaced.Recent.Head.Text)
    | other -> failwith $"expected Replaces, got {other}"
    // Something beyond what the owner committed was never committed: it goes too.
    Assert.True(match Rooms.adopt [ message 1L 1L ] history with Rooms.Replaces _ -> true | _ -> false)

let ``a state transfer of a full history of the longest messages fits in one peer frame`` () =
    let long = String.replicate ProtocolConfig.defaults.MaxTextLength "\u0001"
    let history = Rooms.ofMessages [ for seq in 1L .. int64 Rooms.historyCapacity -> { message seq seq with Text = long } ]

    let replica, outputs = Replication.syncBackup (Some(backupOn 2 1)) (RoomName "#dev") (owning [] Replication.emptyPrimary |> fun replica -> { replica with History = history })
    let sent = sentBy outputs

    let frame = Wire.encodePeerMessage sent.Head.Message
    Assert.True(frame.Length < Wire.maxPeerFrameBytes, $"{frame.Length} bytes")
    match sent.Head.Message with
    | ReplicaSynced(_, _, committed, _) ->
        Assert.Equal(Rooms.transferBudgetChars / ProtocolConfig.defaults.MaxTextLength, committed.Length)
        Assert.Equal(int64 Rooms.historyCapacity, (List.last committed).Seq)
    | other -> failwith $"expected a sync, got {other}"
    Assert.Equal(Some(backupOn 2 1), (primaryOf replica).Synced)

// ---------------------------------------------------------------------------------------------
// Whole nodes.

let private config = { ProtocolConfig.defaults with SuspectAfter = 3; Rebalance = None; HistoryOnJoin = 3 }

/// Nodes 1, 2, 3 led by 3; ann on node 1 (client 10), ben on 2 (20), cat on 3 (30), all in
/// #lobby and #dev, with every placement and backup settled.
let private cluster () : Nodes.Net =
    Nodes.threeWithUsers config
    |> Nodes.request 1 10 (Join "#dev")
    |> Nodes.request 2 20 (Join "#dev")
    |> Nodes.request 3 30 (Join "#dev")
    |> Nodes.settle
    |> Nodes.tickAll

let private roles (room: RoomName) (net: Nodes.Net) : NodeId * NodeId =
    let leader = net.States[3]
    leader.Placements[room].Owner, leader.Backups[room].Backup

let private clientOn (node: NodeId) : ClientId = int64 node * 10L
let private nickOn (node: NodeId) = [| ""; "ann"; "ben"; "cat" |].[node]

let private say (node: NodeId) (text: string) (id: int64) (net: Nodes.Net) =
    Nodes.request node (clientOn node) (Say("#dev", text, id)) net

let private shown (node: NodeId) (net: Nodes.Net) = Nodes.shown (clientOn node) (RoomName "#dev") net |> List.map _.Text

/// Delivers the oldest message in flight that matches, leaving the rest where they are.
let private deliverFirst (matches: Nodes.InFlight -> bool) (net: Nodes.Net) : Nodes.Net =
    let index = net.InFlight |> List.findIndex matches
    let message = net.InFlight[index]
    { net with InFlight = List.removeAt index net.InFlight } |> Nodes.apply message.To (PeerMessageReceived message.Message)

let ``every room gets a backup on another node, and every node knows it`` () =
    let net = cluster ()

    for room in [ Rooms.lobby; (RoomName "#dev") ] do
        let owner, backup = roles room net
        Assert.NotEqual(owner, backup)
        for node in [ 1; 2; 3 ] do
            Assert.Equal(backup, net.States[node].Backups[room].Backup)
        Assert.True(Replication.isUpToDate (Some net.States[owner].Backups[room]) net.States[owner].Primaries[room])

let ``a message is shown to nobody, its sender included, until the backup has stored it`` () =
    let net = cluster ()
    let owner, backup = roles (RoomName "#dev") net

    let net = say owner "hello" 1L net

    Assert.Empty(shown owner net)
    Assert.Contains(net.InFlight, fun m -> m.To = backup && (match m.Message with ReplicaAppended _ -> true | _ -> false))
    let net = Nodes.settle net
    for node in [ 1; 2; 3 ] do
        Assert.Equal<string list>([ "hello" ], shown node net)

let ``the backup writes a message to its log before it confirms it`` () =
    let net = cluster ()
    let owner, backup = roles (RoomName "#dev") net
    let net = say owner "hello" 1L net
    let append = net.InFlight |> List.find (fun m -> m.To = backup && (match m.Message with ReplicaAppended _ -> true | _ -> false))

    let _, effects = Node.step config net.States[backup] (PeerMessageReceived append.Message)

    match effects with
    | [ AppendToLog((RoomName "#dev"), [ stored ]); SendToPeer(info, ReplicaStored((RoomName "#dev"), _, seq)) ] ->
        Assert.Equal("hello", stored.Text)
        Assert.Equal(owner, info.Id)
        Assert.Equal(stored.Seq, seq)
    | other -> failwith $"expected the write, then the confirmation; got {other}"

let ``when the owner dies after its backup stored a message, the promoted backup commits it and nothing is lost`` () =
    let net = cluster ()
    let owner, backup = roles (RoomName "#dev") net
    let witness = [ 1; 2; 3 ] |> List.find (fun node -> node <> owner && node <> backup)
    let net = say owner "acked before" 1L net |> Nodes.settle
    let net = say owner "stored, then the owner died" 2L net
    // The backup stores the message; the owner dies before it hears the confirmation.
    let net = net |> deliverFirst (fun m -> m.To = backup && (match m.Message with ReplicaAppended _ -> true | _ -> false))
    let net = Nodes.crash owner net

    let net = [ 1 .. config.SuspectAfter + 1 ] |> List.fold (fun net _ -> Nodes.tickAll net) net

    Assert.Equal(backup, net.States[witness].Placements[(RoomName "#dev")].Owner)
    for node in [ backup; witness ] do
        Assert.Equal<string list>([ "acked before"; "stored, then the owner died" ], shown node net)
    // The new owner has a new backup, brought up to date.
    let newBackup = net.States[witness].Backups[(RoomName "#dev")]
    Assert.Equal(backup, newBackup.Owner)
    Assert.Equal(witness, newBackup.Backup)
    Assert.True(Replication.isUpToDate (Some newBackup) net.States[backup].Primaries[(RoomName "#dev")])

let ``a retry through another node after a failover is sequenced once`` () =
    let net = cluster ()
    let owner, _ = roles (RoomName "#dev") net
    let other = [ 1; 2; 3 ] |> List.find (fun node -> node <> owner)
    let net = say other "once" 5L net |> Nodes.settle

    let net = say other "once" 5L net |> Nodes.settle

    Assert.Equal<string list>([ "once" ], shown owner net)

let ``a node cut off from the majority commits nothing, and decides nothing as leader`` () =
    let net = cluster ()
    let owner, _ = roles (RoomName "#dev") net
    let others = [ 1; 2; 3 ] |> List.filter (fun node -> node <> owner)
    // The other two are unreachable from the owner: it suspects both and leads a view of one.
    let net = others |> List.fold (fun net node -> Nodes.crash node net) net
    let net = [ 1 .. config.SuspectAfter + 2 ] |> List.fold (fun net _ -> Nodes.tickAll net) net
    Assert.Equal<Set<NodeId>>(Set.singleton owner, net.States[owner].Coordination.View)

    let net = say owner "alone" 9L net |> Nodes.settle

    Assert.Empty(shown owner net)
    Assert.Equal(1, net.States[owner].Primaries[(RoomName "#dev")].Pending.Length)
    Assert.Contains((RoomName "#dev"), (clusterStatus net.States[owner]).Unreplicated)

let ``a room on a single node keeps serving and status says it has no up-to-date backup`` () =
    let net = Nodes.formed config [ 1 ] |> Nodes.connect 1 10 "ann" |> Nodes.settle |> Nodes.tickAll

    let net = Nodes.request 1 10 (Say(Rooms.lobby.Value, "solo", 1L)) net |> Nodes.settle

    Assert.Equal<string list>([ "solo" ], Nodes.shown 10 Rooms.lobby net |> List.map _.Text)
    Assert.Equal<RoomName list>([ Rooms.lobby ], (clusterStatus net.States[1]).Unreplicated)

let ``a node that restarts reads its log back, and the owner's history replaces what it stored and nobody committed`` () =
    let logs = [ (RoomName "#dev"), [ message 1L 1L; message 2L 2L; { message 3L 3L with Text = "never committed" } ] ]

    let state = NodeState.recover logs (NodeState.init (Nodes.infoOf 2))

    Assert.Equal(3L, state.Histories[(RoomName "#dev")].LastSeq)
    let owners = [ message 1L 1L; message 2L 2L; { message 3L 3L with Text = "committed" } ]
    let state, effects = Node.step config state (PeerMessageReceived(HistoryShared((RoomName "#dev"), owners)))
    Assert.Equal("committed", state.Histories[(RoomName "#dev")].Recent.Head.Text)
    Assert.Contains(RewriteLog((RoomName "#dev"), owners), effects)

/// A whole-cluster restart (docs/REPLICATION.md, "A whole-cluster restart"): nodes 1 and 2 hold
/// #dev's acknowledged seqs 1..5 in their logs; node 3 was down while 3..5 committed and holds
/// 1..2. After the restart node 3 leads and places #dev, which no node has a placement of.
let private restartedWithShortLeader () : Nodes.Net =
    let whole = [ 1L..5L ] |> List.map (fun seq -> message seq seq)
    let logs = Map.ofList [ 1, whole; 2, whole; 3, List.take 2 whole ]
    let net = Nodes.create config [ 1; 2; 3 ]
    let recovered = net.States |> Map.map (fun id state -> NodeState.recover [ (RoomName "#dev"), logs[id] ] state)
    let net = { net with States = recovered } |> Nodes.tickAll |> Nodes.tickAll |> Nodes.tickAll
    Assert.True(net.States |> Map.forall (fun _ state -> state.Coordination.Leader = Some 3), "node 3 leads after the restart")
    net

let ``after a whole-cluster restart the leader places a room on a node holding the most of it, and nothing acknowledged is lost`` () =
    let net = restartedWithShortLeader ()

    // Ann joins #dev on node 1 and posts: the room is placed, and the post numbered after seq 5.
    let net = Nodes.connect 1 10 "ann" net |> Nodes.settle |> Nodes.request 1 10 (Join "#dev") |> Nodes.settle |> Nodes.tickAll
    let net = Nodes.request 1 10 (Say("#dev", "after the restart", 6L)) net |> Nodes.settle |> Nodes.tickAll

    let placement = net.States[3].Placements[(RoomName "#dev")]
    Assert.Contains(placement.Owner, [ 1; 2 ])
    Assert.Equal(5L, placement.LastSeq)
    let posted = Nodes.shown 10 (RoomName "#dev") net |> List.filter (fun shown -> shown.Text = "after the restart")
    Assert.Equal<int64 list>([ 6L ], posted |> List.map _.Seq)
    for id in [ 1; 2 ] do
        Assert.Equal<int64 list>([ 1L..6L ], net.States[id].Histories[(RoomName "#dev")].Recent |> List.rev |> List.map _.Seq)

let ``the leader places a room it has no placement of only once every node of its view has reported what it holds`` () =
    let net = restartedWithShortLeader ()
    let leader = { net.States[3] with HeldReports = net.States[3].HeldReports.Remove 2 }

    let waiting, asked = Node.step config leader (PeerMessageReceived(PlacementRequested((RoomName "#dev"), 1)))
    Assert.False(waiting.Placements.ContainsKey (RoomName "#dev"))
    // The silent node is asked for its introduction again, which ends with its report.
    Assert.Contains(asked, fun effect -> match effect with SendToPeer(peer, UsersRequested 3) -> peer.Id = 2 | _ -> false)

    let reported, _ = Node.step config waiting (PeerMessageReceived(RoomsHeld(2, [ (RoomName "#dev"), 5L ])))
    let placed, effects = Node.step config reported (PeerMessageReceived(PlacementRequested((RoomName "#dev"), 1)))
    Assert.Contains(placed.Placements[(RoomName "#dev")].Owner, [ 1; 2 ])
    Assert.Equal(5L, placed.Placements[(RoomName "#dev")].LastSeq)
    // The new owner holds more than the leader: it is not handed the leader's shorter history.
    Assert.DoesNotContain(effects, fun effect -> match effect with SendToPeer(_, HistoryShared _) -> true | _ -> false)

let ``firstGap and fill: a gap in the middle of a history is found and filled from another copy`` () =
    let gapped = Rooms.ofMessages ([ 1L; 2L; 5L; 6L ] |> List.map (fun seq -> message seq seq))

    Assert.Equal(Some(2L, 5L), Rooms.firstGap gapped)
    Assert.Equal(None, Rooms.firstGap (Rooms.ofMessages [ message 3L 3L; message 4L 4L ]))
    let filled = Rooms.fill ([ 1L..7L ] |> List.map (fun seq -> message seq seq)) gapped
    Assert.Equal<int64 list>([ 1L..6L ], filled.Recent |> List.rev |> List.map _.Seq)
    Assert.Equal(None, Rooms.firstGap filled)
    Assert.Equal(6L, filled.LastSeq) // only the gap is filled; what comes after arrives as usual

let ``a node whose log was damaged in the middle asks its peers for the missing seqs and rewrites its log once whole`` () =
    let net = Nodes.formed config [ 1; 2; 3 ] |> Nodes.settle |> Nodes.tickAll
    let whole = [ 1L..6L ] |> List.map (fun seq -> message seq seq)
    let damaged = whole |> List.filter (fun message -> message.Seq <> 3L && message.Seq <> 4L)

    let state = NodeState.recover [ (RoomName "#dev"), damaged ] net.States[2]

    Assert.Equal<Set<RoomName>>(set [ (RoomName "#dev") ], state.Damaged)
    Assert.Equal(6L, state.Histories[(RoomName "#dev")].LastSeq) // the intact records after the damage are kept
    let state, asked = Node.step config state Ticked
    let asks = [ for effect in asked do match effect with SendToPeer(peer, HistoryRequested(room, after, from)) -> (peer.Id, room, after, from) | _ -> () ]
    Assert.Equal<(NodeId * RoomName * int64 * NodeId) list>([ 1, (RoomName "#dev"), 2L, 2; 3, (RoomName "#dev"), 2L, 2 ], List.sort asks)
    Assert.DoesNotContain(asked, fun effect -> match effect with RewriteLog _ -> true | _ -> false)
    // A peer answers with its committed copy after seq 2: the gap is filled, nothing shown again.
    let state, filled = Node.step config state (PeerMessageReceived(HistoryShared((RoomName "#dev"), whole |> List.skip 2)))
    Assert.Equal<int64 list>([ 1L..6L ], state.Histories[(RoomName "#dev")].Recent |> List.rev |> List.map _.Seq)
    Assert.DoesNotContain(filled, fun effect -> match effect with SendToClients(_, Message _) | AppendToLog _ -> true | _ -> false)
    let state, repaired = Node.step config state Ticked
    Assert.Contains(RewriteLog((RoomName "#dev"), whole), repaired)
    Assert.True(state.Damaged.IsEmpty)
    let _, later = Node.step config state Ticked
    Assert.DoesNotContain(later, fun effect -> match effect with RewriteLog _ | SendToPeer(_, HistoryRequested _) -> true | _ -> false)

let ``a node that missed messages asks the owner for them and shows them in order`` () =
    let net = cluster ()
    let owner, _ = roles (RoomName "#dev") net
    let other = [ 1; 2; 3 ] |> List.find (fun node -> node <> owner)
    let net = say owner "one" 1L net |> Nodes.settle
    let net = say owner "two" 2L net |> Nodes.settle
    let two, three = (Nodes.shown (clientOn owner) (RoomName "#dev") net).[1], { (Nodes.shown (clientOn owner) (RoomName "#dev") net).[1] with Seq = 3L; Text = "three"; ClientMessageId = 3L }
    // Node `other` lost "two" (a broken link) and now hears of "three".
    let state =
        { net.States[other] with
            Histories = net.States[other].Histories.Add((RoomName "#dev"), Rooms.ofMessages (Nodes.shown (clientOn other) (RoomName "#dev") net |> List.take 1))
            Shown = net.States[other].Shown.Add((RoomName "#dev"), 1L) }

    let waiting, asked = Node.step config state (PeerMessageReceived(RoomSequenced three))
    let _, shownNow = Node.step config waiting (PeerMessageReceived(HistoryShared((RoomName "#dev"), [ two; three ])))

    Assert.Equal<Effect list>([ SendToPeer(Nodes.infoOf owner, HistoryRequested((RoomName "#dev"), 1L, other)) ], asked)
    let texts = [ for effect in shownNow do match effect with SendToClients(_, Message m) -> m.Text | _ -> () ]
    Assert.Equal<string list>([ "two"; "three" ], texts)

// ---------------------------------------------------------------------------------------------

[<Tests>]
let tests =
    testList "Replication" [
        testCase "hasQuorum: a majority of the known nodes, or a cluster of at most two"
            ``hasQuorum: a majority of the known nodes, or a cluster of at most two``
        testCase "sequencePost: numbers continue after history and pending, and a retry is recognised either way"
            ``sequencePost: numbers continue after history and pending, and a retry is recognised either way``
        testCase "commit: everything without a backup only when alone, what the backup stored with one, nothing without a quorum"
            ``commit: everything without a backup only when alone, what the backup stored with one, nothing without a quorum``
        testCase "syncBackup: a new backup gets the history and the pending messages once, and nothing commits until it confirms"
            ``syncBackup: a new backup gets the history and the pending messages once, and nothing commits until it confirms``
        testCase "syncBackup: a new leader's assignment with the old one's version is synced again (the stall)"
            ``syncBackup: a new leader's assignment with the old one's version is synced again (the stall)``
        testCase "recvStored: a backup confirming less than the owner committed is sent the state again; one beyond what it sequenced is ignored"
            ``recvStored: a backup confirming less than the owner committed is sent the state again; one beyond what it sequenced is ignored``
        testCase "storeReplica: only the message right after what the backup holds, written before it is confirmed"
            ``storeReplica: only the message right after what the backup holds, written before it is confirmed``
        testCase "storeReplica: a batch is stored with one write and confirmed once, up to its last message"
            ``storeReplica: a batch is stored with one write and confirmed once, up to its last message``
        testCase "Uncommitted.addAll: the same queue as adding each message in turn" ``Uncommitted.addAll: the same queue as adding each message in turn``
        testCase "sendAppends: the owner keeps at most the window in flight, and what arrives meanwhile goes in one append"
            ``sendAppends: the owner keeps at most the window in flight, and what arrives meanwhile goes in one append``
        testCase "deliverSequenced: a committed message that differs from the stored copy rewrites the log without that copy"
            ``deliverSequenced: a committed message that differs from the stored copy rewrites the log without that copy``
        testCase "takeOwnership: a node that stops owning a room with pending messages rewrites its log without them"
            ``takeOwnership: a node that stops owning a room with pending messages rewrites its log without them``
        testCase "recvSync: a stored copy the new owner does not send again is rewritten out of the log"
            ``recvSync: a stored copy the new owner does not send again is rewritten out of the log``
        testCase "recvSequenced: a message that skips numbers is held back and the owner asked once"
            ``recvSequenced: a message that skips numbers is held back and the owner asked once``
        testCase "assignBackup: the leader picks the least-loaded other live node and never the owner"
            ``assignBackup: the leader picks the least-loaded other live node and never the owner``
        testCase "promoteBackup: an owner gone from the view is replaced by its live backup, with a newer placement"
            ``promoteBackup: an owner gone from the view is replaced by its live backup, with a newer placement``
        testCase "adopt: the owner's messages extend an agreeing history and replace a disagreeing one"
            ``adopt: the owner's messages extend an agreeing history and replace a disagreeing one``
        testCase "a state transfer of a full history of the longest messages fits in one peer frame"
            ``a state transfer of a full history of the longest messages fits in one peer frame``
        testCase "every room gets a backup on another node, and every node knows it"
            ``every room gets a backup on another node, and every node knows it``
        testCase "a message is shown to nobody, its sender included, until the backup has stored it"
            ``a message is shown to nobody, its sender included, until the backup has stored it``
        testCase "the backup writes a message to its log before it confirms it"
            ``the backup writes a message to its log before it confirms it``
        testCase "when the owner dies after its backup stored a message, the promoted backup commits it and nothing is lost"
            ``when the owner dies after its backup stored a message, the promoted backup commits it and nothing is lost``
        testCase "a retry through another node after a failover is sequenced once"
            ``a retry through another node after a failover is sequenced once``
        testCase "a node cut off from the majority commits nothing, and decides nothing as leader"
            ``a node cut off from the majority commits nothing, and decides nothing as leader``
        testCase "a room on a single node keeps serving and status says it has no up-to-date backup"
            ``a room on a single node keeps serving and status says it has no up-to-date backup``
        testCase "after a whole-cluster restart the leader places a room on a node holding the most of it, and nothing acknowledged is lost"
            ``after a whole-cluster restart the leader places a room on a node holding the most of it, and nothing acknowledged is lost``
        testCase "the leader places a room it has no placement of only once every node of its view has reported what it holds"
            ``the leader places a room it has no placement of only once every node of its view has reported what it holds``
        testCase "a node that restarts reads its log back, and the owner's history replaces what it stored and nobody committed"
            ``a node that restarts reads its log back, and the owner's history replaces what it stored and nobody committed``
        testCase "firstGap and fill: a gap in the middle of a history is found and filled from another copy"
            ``firstGap and fill: a gap in the middle of a history is found and filled from another copy``
        testCase "a node whose log was damaged in the middle asks its peers for the missing seqs and rewrites its log once whole"
            ``a node whose log was damaged in the middle asks its peers for the missing seqs and rewrites its log once whole``
        testCase "a node that missed messages asks the owner for them and shows them in order"
            ``a node that missed messages asks the owner for them and shows them in order``
    ]
