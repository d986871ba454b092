/// Room placement by the leader (spec/Placement.tla: LeastLoaded, RequestRoom, AssignRoom,
/// RecvAssignment, ReassignRooms), per function in init / act / check parts, and FsCheck
/// properties for ReassignRooms.
module FormalChat.Protocol.Tests.PlacementTests

open Expecto
open FormalChat.Protocol
open FsCheck
open FsCheck.FSharp
open Xunit

/// Node `self` with `view` (self included), every peer just heard from, following `leader` in `epoch`.
let private coordination (self: NodeId) (view: NodeId list) (leader: NodeId option) (epoch: Epoch) : Coordination =
    let view = Set.ofList (self :: view)
    { Coordination.init self with
        View = view
        Age = view.Remove self |> Seq.map (fun peer -> peer, 0) |> Map.ofSeq
        Epoch = epoch
        Leader = leader }

/// The leader, node 3, of a view of 1, 2 and 3 in epoch 2.
let private leader3 = coordination 3 [ 1; 2 ] (Some 3) 2

let private noClients (_: NodeId) = 0

let private clientsFrom (counts: (NodeId * int) list) (node: NodeId) =
    counts |> List.tryFind (fst >> (=) node) |> Option.map snd |> Option.defaultValue 0

let private placedOn (owner: NodeId) (epoch: Epoch) : Assignment = { Owner = owner; Epoch = epoch; Leader = 0; Version = 1; LastSeq = 0L }

let private placements (rooms: (RoomName * NodeId) list) : Placement.Placements =
    rooms |> List.map (fun (room, owner) -> room, placedOn owner 1) |> Map.ofList

// ---------------------------------------------------------------------------------------------
// LeastLoaded.

let ``leastLoaded: the node owning the fewest rooms wins, whatever its clients`` () =
    let owned = placements [ (RoomName "#a"), 1; (RoomName "#b"), 1; (RoomName "#c"), 3 ]

    let chosen = Placement.leastLoaded (clientsFrom [ 1, 0; 2, 50; 3, 0 ]) owned leader3

    Assert.Equal<int list>([ 2; 0; 1 ], [ for node in 1..3 -> Placement.roomsOwned owned node ])
    Assert.Equal(2, chosen)

let ``leastLoaded: with equal rooms the node with the fewest clients wins`` () =
    let owned = placements [ (RoomName "#a"), 1; (RoomName "#b"), 2; (RoomName "#c"), 3 ]

    Assert.Equal(2, Placement.leastLoaded (clientsFrom [ 1, 5; 2, 1; 3, 4 ]) owned leader3)

let ``leastLoaded: with equal rooms and clients the lowest id wins`` () =
    Assert.Equal(1, Placement.leastLoaded (clientsFrom [ 1, 2; 2, 2; 3, 2 ]) Map.empty leader3)
    Assert.Equal(2, Placement.leastLoaded (clientsFrom [ 1, 3; 2, 2; 3, 2 ]) Map.empty leader3)

let ``leastLoaded: only nodes in the view count, and rooms on departed nodes load nobody`` () =
    let owned = placements [ (RoomName "#a"), 1; (RoomName "#b"), 2; (RoomName "#c"), 9; (RoomName "#d"), 9 ]

    Assert.Equal(3, Placement.leastLoaded noClients owned leader3)

// ---------------------------------------------------------------------------------------------
// RequestRoom.

let ``requestRoom: a room nobody owns is asked of the leader`` () =
    let follower = coordination 1 [ 2; 3 ] (Some 3) 2

    let sent = Placement.requestRoom (RoomName "#dev") Map.empty follower

    Assert.Equal<Sent list>([ { To = 3; Message = PlacementRequested((RoomName "#dev"), 1) } ], sent)

let ``requestRoom: a room whose owner left the view is asked of the leader`` () =
    let follower = coordination 1 [ 3 ] (Some 3) 2

    let sent = Placement.requestRoom (RoomName "#dev") (placements [ (RoomName "#dev"), 2 ]) follower

    Assert.Equal<Sent list>([ { To = 3; Message = PlacementRequested((RoomName "#dev"), 1) } ], sent)

let ``requestRoom: nothing is sent for a room on a live owner, or while there is no leader`` () =
    let follower = coordination 1 [ 2; 3 ] (Some 3) 2
    let electing = coordination 1 [ 2; 3 ] None 2

    Assert.Empty(Placement.requestRoom (RoomName "#dev") (placements [ (RoomName "#dev"), 2 ]) follower)
    Assert.Empty(Placement.requestRoom (RoomName "#dev") Map.empty electing)

let ``requestRoom: the leader asks itself`` () =
    Assert.Equal<Sent list>([ { To = 3; Message = PlacementRequested((RoomName "#dev"), 3) } ], Placement.requestRoom (RoomName "#dev") Map.empty leader3)

// ---------------------------------------------------------------------------------------------
// AssignRoom.

let ``assignRoom: the leader places a new room on the least-loaded node in its epoch and tells every other node`` () =
    let next, sent = Placement.assignRoom (clientsFrom [ 1, 4; 2, 1; 3, 2 ]) 17L 1 (RoomName "#dev") Map.empty leader3

    let placement = { Owner = 2; Epoch = 2L; Leader = 3; Version = 1; LastSeq = 17L }
    Assert.Equal<Placement.Placements>(Map.ofList [ (RoomName "#dev"), placement ], next)
    Assert.Equal<Sent list>(
        [ { To = 1; Message = RoomAssigned((RoomName "#dev"), placement) }; { To = 2; Message = RoomAssigned((RoomName "#dev"), placement) } ],
        sent)

let ``assignRoom: a node that is not the leader assigns nothing`` () =
    for follower in [ coordination 1 [ 2; 3 ] (Some 3) 2; coordination 1 [ 2; 3 ] None 2 ] do
        let before = placements [ (RoomName "#a"), 9 ]
        Assert.Equal((before, []), Placement.assignRoom noClients 0L 1 (RoomName "#dev") before follower)
        Assert.Equal((before, []), Placement.assignRoom noClients 0L 1 (RoomName "#a") before follower)

let ``assignRoom: a room on a live owner is not moved, only re-announced to the node that asked`` () =
    let before = Map.ofList [ (RoomName "#dev"), { Owner = 1; Epoch = 1L; Leader = 0; Version = 1; LastSeq = 0L } ]

    let next, sent = Placement.assignRoom noClients 40L 2 (RoomName "#dev") before leader3

    Assert.Equal<Placement.Placements>(before, next)
    Assert.Equal<Sent list>([ { To = 2; Message = RoomAssigned((RoomName "#dev"), before[(RoomName "#dev")]) } ], sent)

let ``assignRoom: a room on a live owner asked for by the leader itself sends nothing`` () =
    let before = placements [ (RoomName "#dev"), 1 ]

    Assert.Equal((before, []), Placement.assignRoom noClients 0L 3 (RoomName "#dev") before leader3)

let ``assignRoom: a room whose owner left the view is moved, carrying the last sequence number`` () =
    let before = Map.ofList [ (RoomName "#dev"), { Owner = 9; Epoch = 1L; Leader = 0; Version = 1; LastSeq = 5L } ]

    let next, sent = Placement.assignRoom noClients 12L 1 (RoomName "#dev") before leader3

    Assert.Equal({ Owner = 1; Epoch = 2L; Leader = 3; Version = 2; LastSeq = 12L }, next[(RoomName "#dev")])
    Assert.Equal<NodeId list>([ 1; 2 ], sent |> List.map _.To)

// ---------------------------------------------------------------------------------------------
// RecvAssignment.

let ``recvAssignment: a room not placed yet takes the assignment`` () =
    Assert.Equal(Some(placedOn 2 1), (Placement.recvAssignment (RoomName "#dev") (placedOn 2 1) Map.empty).TryFind (RoomName "#dev"))

let ``recvAssignment: a newer epoch or a later version of the same epoch replaces; anything else is ignored`` () =
    let current = Map.ofList [ (RoomName "#dev"), placedOn 2 5 ]
    let later = { placedOn 1 5 with Version = 2 }

    Assert.Equal(placedOn 3 6, (Placement.recvAssignment (RoomName "#dev") (placedOn 3 6) current)[(RoomName "#dev")])
    Assert.Equal(placedOn 2 5, (Placement.recvAssignment (RoomName "#dev") (placedOn 3 4) current)[(RoomName "#dev")])
    Assert.Equal(placedOn 2 5, (Placement.recvAssignment (RoomName "#dev") (placedOn 1 5) current)[(RoomName "#dev")])
    Assert.Equal(later, (Placement.recvAssignment (RoomName "#dev") later current)[(RoomName "#dev")])

let ``recvAssignment: other rooms are untouched`` () =
    let current = placements [ (RoomName "#a"), 1; (RoomName "#b"), 2 ]

    let next = Placement.recvAssignment (RoomName "#b") (placedOn 3 2) current

    Assert.Equal(current[(RoomName "#a")], next[(RoomName "#a")])

// ---------------------------------------------------------------------------------------------
// Two leaders of one epoch (spec: Elect may reuse an epoch; Newer breaks the tie by leader).

let ``isNewer: of two assignments with one epoch and version, the higher leader's is newer`` () =
    let byLeader3 = { placedOn 2 1 with Leader = 3 }
    let byLeader2 = { placedOn 1 1 with Leader = 2 }

    Assert.True(Placement.isNewer byLeader3 byLeader2)
    Assert.False(Placement.isNewer byLeader2 byLeader3)
    // The version still comes first: a later leader of the epoch with a lower id re-places.
    Assert.True(Placement.isNewer { byLeader2 with Version = 2 } byLeader3)

/// Leader 3 wins epoch 1, places #dev and stops; the survivors finish its round again and
/// node 2 wins epoch 1 too (spec/MCFormalChatTwoLeaders3.cfg). Node 2 has not heard of #dev
/// and places it anew, on another owner, with the same (epoch, version).
let private twoLeadersOfEpoch1 () =
    let leader3 = coordination 3 [ 1; 2 ] (Some 3) 1
    let leader2 = coordination 2 [ 1 ] (Some 2) 1
    let by3, _ = Placement.assignRoom (clientsFrom [ 1, 5; 2, 0; 3, 9 ]) 0L 1 (RoomName "#dev") Map.empty leader3
    let by2, _ = Placement.assignRoom noClients 0L 1 (RoomName "#dev") Map.empty leader2
    by3[(RoomName "#dev")], by2[(RoomName "#dev")]

let ``two leaders of one epoch assign different owners: every node ends with the higher leader's, in either order`` () =
    let by3, by2 = twoLeadersOfEpoch1 ()
    Assert.Equal((1L, 1, 3, 2), (by3.Epoch, by3.Version, by3.Leader, by3.Owner))
    Assert.Equal((1L, 1, 2, 1), (by2.Epoch, by2.Version, by2.Leader, by2.Owner))

    let receive (assignments: Assignment list) (start: Placement.Placements) =
        assignments |> List.fold (fun placements a -> Placement.recvAssignment (RoomName "#dev") a placements) start

    // A follower that hears both, in either order, and leader 2 itself, which holds its own.
    Assert.Equal(by3, (receive [ by3; by2 ] Map.empty)[(RoomName "#dev")])
    Assert.Equal(by3, (receive [ by2; by3 ] Map.empty)[(RoomName "#dev")])
    Assert.Equal(by3, (receive [ by3 ] (Map.ofList [ (RoomName "#dev"), by2 ]))[(RoomName "#dev")])
    Assert.Equal(by3, (receive [ by2 ] (Map.ofList [ (RoomName "#dev"), by3 ]))[(RoomName "#dev")])

let ``two leaders of one epoch: the later leader's re-placement of the first one's room still wins`` () =
    let by3, _ = twoLeadersOfEpoch1 ()
    // Leader 2 holds leader 3's assignment; its owner, node 2 here, is fine, but had it been a
    // node that left the view, leader 2 moves the room with a later version, which must win
    // over leader 3's although 2 < 3.
    let leader2 = coordination 2 [ 1 ] (Some 2) 1
    let gone = { by3 with Owner = 3 }

    let next, _ = Placement.reassignRooms noClients (fun _ -> 0L) (Map.ofList [ (RoomName "#dev"), gone ]) leader2

    Assert.Equal((1L, 2, 2), (next[(RoomName "#dev")].Epoch, next[(RoomName "#dev")].Version, next[(RoomName "#dev")].Leader))
    Assert.Equal(next[(RoomName "#dev")], (Placement.recvAssignment (RoomName "#dev") next[(RoomName "#dev")] (Map.ofList [ (RoomName "#dev"), gone ]))[(RoomName "#dev")])

let ``backup assignments follow the same order as placements`` () =
    let backup leader version = { Backup = 2; Owner = 1; Epoch = 1L; Leader = leader; Version = version }

    Assert.True(Replication.isNewer (backup 3 1) (backup 2 1))
    Assert.False(Replication.isNewer (backup 2 1) (backup 3 1))
    Assert.True(Replication.isNewer (backup 2 2) (backup 3 1))
    Assert.Equal(backup 3 1, (Replication.recvBackupAssignment (RoomName "#dev") (backup 2 1) (Map.ofList [ (RoomName "#dev"), backup 3 1 ]))[(RoomName "#dev")])

// ---------------------------------------------------------------------------------------------
// ReassignRooms.

let ``reassignRooms: every room whose owner left the view moves, rooms on live owners stay`` () =
    let before =
        Map.ofList
            [ (RoomName "#a"), { Owner = 9; Epoch = 1L; Leader = 0; Version = 1; LastSeq = 3L }
              (RoomName "#b"), { Owner = 9; Epoch = 1L; Leader = 0; Version = 1; LastSeq = 0L }
              (RoomName "#c"), { Owner = 1; Epoch = 1L; Leader = 0; Version = 1; LastSeq = 8L } ]
    let lastSeq room = if room = (RoomName "#a") then 4L else 0L

    let next, sent = Placement.reassignRooms noClients lastSeq before leader3

    Assert.Equal(before[(RoomName "#c")], next[(RoomName "#c")])
    // One by one, in room order: #a to 2 (2 and 3 own nothing, 2 is the lower id), then #b to
    // 3, which now owns fewer rooms than 2.
    Assert.Equal({ Owner = 2; Epoch = 2L; Leader = 3; Version = 2; LastSeq = 4L }, next[(RoomName "#a")])
    Assert.Equal({ Owner = 3; Epoch = 2L; Leader = 3; Version = 2; LastSeq = 0L }, next[(RoomName "#b")])
    Assert.Equal(4, sent.Length)

let ``reassignRooms: a follower moves nothing`` () =
    let follower = coordination 1 [ 2 ] (Some 2) 2
    let before = placements [ (RoomName "#a"), 9 ]

    Assert.Equal((before, []), Placement.reassignRooms noClients (fun _ -> 0L) before follower)

type private ReassignCase =
    { View: NodeId list
      /// Rooms and their owners: some live, some departed (ids 20 and above).
      Rooms: (RoomName * NodeId) list }

let private reassignCaseGen (allDeparted: bool) : Gen<ReassignCase> =
    gen {
        let! others = Gen.subListOf [ 1..7 ]
        let view = 8 :: others
        let! count = Gen.choose (0, 30)
        let! owners =
            if allDeparted then Gen.listOfLength count (Gen.choose (20, 23))
            else Gen.listOfLength count (Gen.oneof [ Gen.elements view; Gen.choose (20, 23) ])
        return { View = view; Rooms = owners |> List.mapi (fun index owner -> RoomName $"#r{index}", owner) }
    }

let private leaderOf (case: ReassignCase) = coordination 8 case.View (Some 8) 3

let ``property: after reassignRooms every room's owner is in the view, and rooms on live owners did not move`` () =
    let property (case: ReassignCase) =
        let state = leaderOf case
        let before = placements case.Rooms
        let next, sent = Placement.reassignRooms noClients (fun _ -> 0L) before state
        Assert.Equal<Set<RoomName>>(before |> Map.keys |> Set.ofSeq, next |> Map.keys |> Set.ofSeq)
        for KeyValue(room, placement) in next do
            Assert.True(state.View.Contains placement.Owner, $"{room} is on node {placement.Owner}, outside {state.View}")
            if state.View.Contains before[room].Owner then Assert.Equal(before[room], placement)
        let moved = before |> Map.filter (fun _ placement -> not (state.View.Contains placement.Owner)) |> Map.count
        Assert.Equal((state.View.Count - 1) * moved, sent.Length)

    Check.One(Config.QuickThrowOnFailure.WithMaxTest(300), Prop.forAll (Arb.fromGen (reassignCaseGen false)) property)

let ``property: rooms that all need a new owner, with equal clients everywhere, are spread within one of each other`` () =
    let property (case: ReassignCase) =
        let state = leaderOf case
        let next, _ = Placement.reassignRooms (fun _ -> 3) (fun _ -> 0L) (placements case.Rooms) state
        let counts = [ for node in state.View -> Placement.roomsOwned next node ]
        Assert.True(List.max counts - List.min counts <= 1, $"room counts {counts} over view {state.View}")

    Check.One(Config.QuickThrowOnFailure.WithMaxTest(300), Prop.forAll (Arb.fromGen (reassignCaseGen true)) property)

// ---------------------------------------------------------------------------------------------

[<Tests>]
let tests =
    testList "Placement" [
        testCase "leastLoaded: the node owning the fewest rooms wins, whatever its clients"
            ``leastLoaded: the node owning the fewest rooms wins, whatever its clients``
        testCase "leastLoaded: with equal rooms the node with the fewest clients wins"
            ``leastLoaded: with equal rooms the node with the fewest clients wins``
        testCase "leastLoaded: with equal rooms and clients the lowest id wins"
            ``leastLoaded: with equal rooms and clients the lowest id wins``
        testCase "leastLoaded: only nodes in the view count, and rooms on departed nodes load nobody"
            ``leastLoaded: only nodes in the view count, and rooms on departed nodes load nobody``
        testCase "requestRoom: a room nobody owns is asked of the leader"
            ``requestRoom: a room nobody owns is asked of the leader``
        testCase "requestRoom: a room whose owner left the view is asked of the leader"
            ``requestRoom: a room whose owner left the view is asked of the leader``
        testCase "requestRoom: nothing is sent for a room on a live owner, or while there is no leader"
            ``requestRoom: nothing is sent for a room on a live owner, or while there is no leader``
        testCase "requestRoom: the leader asks itself"
            ``requestRoom: the leader asks itself``
        testCase "assignRoom: the leader places a new room on the least-loaded node in its epoch and tells every other node"
            ``assignRoom: the leader places a new room on the least-loaded node in its epoch and tells every other node``
        testCase "assignRoom: a node that is not the leader assigns nothing"
            ``assignRoom: a node that is not the leader assigns nothing``
        testCase "assignRoom: a room on a live owner is not moved, only re-announced to the node that asked"
            ``assignRoom: a room on a live owner is not moved, only re-announced to the node that asked``
        testCase "assignRoom: a room on a live owner asked for by the leader itself sends nothing"
            ``assignRoom: a room on a live owner asked for by the leader itself sends nothing``
        testCase "assignRoom: a room whose owner left the view is moved, carrying the last sequence number"
            ``assignRoom: a room whose owner left the view is moved, carrying the last sequence number``
        testCase "recvAssignment: a room not placed yet takes the assignment"
            ``recvAssignment: a room not placed yet takes the assignment``
        testCase "recvAssignment: a newer epoch or a later version of the same epoch replaces; anything else is ignored"
            ``recvAssignment: a newer epoch or a later version of the same epoch replaces; anything else is ignored``
        testCase "recvAssignment: other rooms are untouched"
            ``recvAssignment: other rooms are untouched``
        testCase "isNewer: of two assignments with one epoch and version, the higher leader's is newer"
            ``isNewer: of two assignments with one epoch and version, the higher leader's is newer``
        testCase "two leaders of one epoch assign different owners: every node ends with the higher leader's, in either order"
            ``two leaders of one epoch assign different owners: every node ends with the higher leader's, in either order``
        testCase "two leaders of one epoch: the later leader's re-placement of the first one's room still wins"
            ``two leaders of one epoch: the later leader's re-placement of the first one's room still wins``
        testCase "backup assignments follow the same order as placements"
            ``backup assignments follow the same order as placements``
        testCase "reassignRooms: every room whose owner left the view moves, rooms on live owners stay"
            ``reassignRooms: every room whose owner left the view moves, rooms on live owners stay``
        testCase "reassignRooms: a follower moves nothing"
            ``reassignRooms: a follower moves nothing``
        testCase "property: after reassignRooms every room's owner is in the view, and rooms on live owners did not move"
            ``property: after reassignRooms every room's owner is in the view, and rooms on live owners did not move``
        testCase "property: rooms that all need a new owner, with equal clients everywhere, are spread within one of each other"
            ``property: rooms that all need a new owner, with equal clients everywhere, are spread within one of each other``
    ]
