/// The client's session across connections (Protocol.FSharp/ClientSession.fs), one event at a
/// time: resume points, duplicate and out-of-order filtering, acknowledgements, and a failover
/// that re-sends what was not acknowledged with the same ids. ReplicationSimulation runs the same
/// session against whole simulated clusters.
module FormalChat.Protocol.Tests.ClientSessionTests

open Expecto
open FsCheck
open FsCheck.FSharp
open FormalChat.Protocol
open Xunit

let private message (room: RoomName) (seq: int64) (from: string) (id: int64) : RoomMessage =
    { Room = room; Seq = seq; From = Nick from; FromNode = 1; Text = $"text {seq}"; ClientMessageId = id }

let private endpointOf (id: NodeId) : Endpoint = { Host = "127.0.0.1"; Port = 5000 + id }

/// Runs events in order; returns the last state and every effect, in order.
let private run (events: ClientSessionEvent list) (session: ClientSessionState) =
    events
    |> List.fold
        (fun (session, effects) event ->
            let next, more = ClientSession.step event session
            next, effects @ more)
        (session, [])

let private welcome (node: NodeId) (token: string) = Welcome(Nick "alice", node, Some 3, token)

/// alice, welcomed on connection 1 by node `node`, its sync answered: online.
let private onlineOn (node: NodeId) : ClientSessionState =
    ClientSession.create "alice" 1L
    |> run
        [ ConnectionOpened 1L
          ReplyReceived(1L, welcome node "token-1", false)
          ReplyReceived(1L, WhoListed(None, []), true) ]
    |> fst

let private deliver (m: RoomMessage) (session: ClientSessionState) = ClientSession.step (ReplyReceived(1L, Message m, false)) session

let private sent (effects: ClientSessionEffect list) : ClientRequest list =
    [ for effect in effects do
          match effect with
          | Send(_, request) -> request
          | _ -> () ]

let ``a replay after a resume shows nothing twice, and an older frame is not shown`` () =
    let session = onlineOn 2
    let session, first = session |> deliver (message (RoomName "#lobby") 41L "bob" 0L)
    let session, _ = session |> deliver (message (RoomName "#lobby") 42L "bob" 0L)
    Assert.Equal<ClientSessionEffect list>([ Show(Message(message (RoomName "#lobby") 41L "bob" 0L)) ], first)
    // The new node replays from the resume point; what was shown already stays hidden.
    let session, replayed = session |> run [ for seq in [ 41L; 42L ] -> ReplyReceived(1L, Message(message (RoomName "#lobby") seq "bob" 0L), false) ]
    Assert.Empty replayed
    // Out of order: 40 after 42 is not shown either.
    let session, older = session |> deliver (message (RoomName "#lobby") 40L "bob" 0L)
    Assert.Empty older
    let session, next = session |> deliver (message (RoomName "#lobby") 43L "bob" 0L)
    Assert.Equal(1, next.Length)
    Assert.Equal(43L, ClientSession.lastSeqShown (RoomName "#lobby") session)

let ``sequence numbers are per room, and the resume points name every room joined or being joined`` () =
    let session, _ =
        onlineOn 2
        |> run
            [ RequestSubmitted(Join "#dev")
              ReplyReceived(1L, Joined((RoomName "#dev"), Some 2, 1), false)
              RequestSubmitted(Join "#ops")
              ReplyReceived(1L, Message(message (RoomName "#lobby") 10L "bob" 0L), false)
              ReplyReceived(1L, Message(message (RoomName "#dev") 3L "bob" 0L), false) ]
    Assert.Equal<(RoomName * int64) list>([ (RoomName "#dev"), 3L; (RoomName "#lobby"), 10L; (RoomName "#ops"), 0L ], ClientSession.resumePoints session)
    Assert.Equal((RoomName "#ops"), session.CurrentRoom)

let ``a post is unconfirmed until it comes back with its id, and only alice's own id confirms it`` () =
    let session, effects = onlineOn 2 |> run [ SayRequested((RoomName "#lobby"), "one"); SayRequested((RoomName "#lobby"), "two") ]
    Assert.Equal<ClientRequest list>([ Say("#lobby", "one", 1L); Say("#lobby", "two", 2L) ], sent effects)
    // Someone else's message with the same id confirms nothing.
    let session, effects = session |> deliver (message (RoomName "#lobby") 7L "bob" 1L)
    Assert.False(effects |> List.exists (function ShowAcknowledged _ -> true | _ -> false))
    let mine = message (RoomName "#lobby") 8L "alice" 1L
    let session, effects = session |> deliver mine
    Assert.Equal<ClientSessionEffect list>([ Show(Message mine); ShowAcknowledged mine ], effects)
    Assert.Equal<int64 list>([ 2L ], session.Unconfirmed |> Map.keys |> List.ofSeq)
    // A replay of the same message neither shows nor acknowledges it again.
    let _, effects = session |> deliver mine
    Assert.Empty effects

let ``a post whose echo was already shown is still acknowledged`` () =
    // After a failover the replay may bring the own message back: it confirms even if hidden.
    let session, _ = onlineOn 2 |> run [ SayRequested((RoomName "#lobby"), "in flight") ]
    let session, _ = session |> deliver (message (RoomName "#lobby") 20L "bob" 0L)
    let echo = message (RoomName "#lobby") 20L "alice" 1L
    let session, effects = session |> deliver echo
    Assert.Equal<ClientSessionEffect list>([ ShowAcknowledged echo ], effects)
    Assert.True(ClientSession.isSettled session)

let ``the first hello resumes nothing and later ones carry the token and every room`` () =
    let _, first = ClientSession.create "alice" 1L |> ClientSession.step (ConnectionOpened 1L)
    Assert.Equal<ClientRequest list>([ Hello { Nick = "alice"; Session = None; Resume = []; Password = None } ], sent first)
    let session, _ =
        onlineOn 2
        |> run
            [ RequestSubmitted(Join "#dev")
              ReplyReceived(1L, Joined((RoomName "#dev"), Some 2, 1), false)
              ReplyReceived(1L, Message(message (RoomName "#lobby") 1042L "bob" 0L), false)
              ReplyReceived(1L, Message(message (RoomName "#dev") 7L "bob" 0L), false)
              ConnectionClosed(1L, "connection reset", false) ]
    let _, again = session |> ClientSession.step (ConnectionOpened 2L)
    Assert.Equal<ClientRequest list>(
        [ Hello { Nick = "alice"; Session = Some "token-1"; Resume = [ "#dev", 7L; "#lobby", 1042L ]; Password = None } ],
        sent again
    )

let ``leaving a room forgets its position and its posts, and the lobby cannot be left`` () =
    let session, _ =
        onlineOn 2
        |> run
            [ RequestSubmitted(Join "#dev")
              ReplyReceived(1L, Joined((RoomName "#dev"), Some 2, 1), false)
              ReplyReceived(1L, Message(message (RoomName "#dev") 9L "bob" 0L), false)
              SayRequested((RoomName "#dev"), "bye")
              ReplyReceived(1L, LeftRoom (RoomName "#dev"), false) ]
    Assert.Equal((RoomName "#lobby"), session.CurrentRoom)
    Assert.Equal(0L, ClientSession.lastSeqShown (RoomName "#dev") session)
    Assert.True(session.Unconfirmed.IsEmpty)
    let session, effects = session |> ClientSession.step (RoomSwitchRequested (RoomName "#dev"))
    Assert.Equal<ClientSessionEffect list>([ ShowError("bad-command", "you are not in #dev; /join #dev first") ], effects)
    let session, _ = session |> ClientSession.step (ReplyReceived(1L, LeftRoom (RoomName "#lobby"), false))
    Assert.True(session.Joined.Contains (RoomName "#lobby"))

let ``message ids start where told and never at zero`` () =
    let _, effects = { onlineOn 2 with NextMessageId = 1_000L } |> ClientSession.step (SayRequested((RoomName "#lobby"), "x"))
    Assert.Equal<ClientRequest list>([ Say("#lobby", "x", 1_000L) ], sent effects)
    Assert.Throws<System.ArgumentException>(fun () -> ClientSession.create "alice" 0L |> ignore) |> ignore

let ``a failover resumes every room and re-sends what the replay did not acknowledge, with the same ids`` () =
    let session, _ =
        onlineOn 3
        |> run
            [ ReplyReceived(1L, Message(message (RoomName "#lobby") 5L "bob" 0L), false)
              SayRequested((RoomName "#lobby"), "one")
              SayRequested((RoomName "#lobby"), "two")
              SayRequested((RoomName "#lobby"), "three") ]
    let session, lost = session |> ClientSession.step (ConnectionClosed(1L, "connection reset", false))
    Assert.Equal<ClientSessionEffect list>([ FailOver { Previous = 3; Redirect = None; Reason = "connection reset" } ], lost)
    Assert.Equal("alice #lobby (reconnecting)> ", ClientSession.prompt session)
    // Said while reconnecting: kept, sent later.
    let session, effects = session |> ClientSession.step (SayRequested((RoomName "#lobby"), "four"))
    Assert.Empty effects
    let session, hello = session |> ClientSession.step (ConnectionOpened 2L)
    Assert.Equal<ClientRequest list>([ Hello { Nick = "alice"; Session = Some "token-1"; Resume = [ "#lobby", 5L ]; Password = None } ], sent hello)
    let session, welcomed = session |> ClientSession.step (ReplyReceived(2L, welcome 1 "token-2", false))
    let report = { Node = 1; Previous = 3; Redirected = false; Reason = "connection reset"; Resumed = [ (RoomName "#lobby"), 5L ] }
    Assert.Equal<ClientSessionEffect list>([ ShowReconnected report; RefreshCandidates 2L; Sync 2L ], welcomed)
    Assert.Equal("reconnected to node 1 after node 3 failed; resumed #lobby from 5", report.Describe())
    // The replay: "two" was sequenced before the crash; said while catching up waits too.
    let session, replay = session |> ClientSession.step (ReplyReceived(2L, Message { message (RoomName "#lobby") 6L "alice" 2L with Text = "two" }, false))
    Assert.Equal(2, replay.Length)
    let session, effects = session |> ClientSession.step (SayRequested((RoomName "#lobby"), "five"))
    Assert.Empty effects
    // A frame from the dead connection changes nothing.
    let session, stale = session |> ClientSession.step (ReplyReceived(1L, Message(message (RoomName "#lobby") 9L "bob" 0L), false))
    Assert.Empty stale
    let session, resent = session |> ClientSession.step (ReplyReceived(2L, WhoListed(None, []), true))
    Assert.Equal<ClientRequest list>(
        [ Say("#lobby", "one", 1L); Say("#lobby", "three", 3L); Say("#lobby", "four", 4L); Say("#lobby", "five", 5L) ],
        sent resent
    )
    Assert.True(ClientSession.isOnline session)
    Assert.Equal("alice #lobby> ", ClientSession.prompt session)

let ``a redirect is tried first, the failed node last, and the line says the client moved`` () =
    let target = { Node = 1; Client = endpointOf 1; Reason = "node 1 has 0 clients" }
    let session, effects =
        onlineOn 3
        |> run
            [ ReplyReceived(1L, Redirected(1, endpointOf 1, "node 1 has 0 clients"), false)
              ConnectionClosed(1L, "closed by the node", true) ]
    let plan = { Previous = 3; Redirect = Some target; Reason = "closed by the node" }
    Assert.Contains(FailOver plan, effects)
    let candidates = [ { Id = 3; Client = endpointOf 3; Clients = 0 }; { Id = 2; Client = endpointOf 2; Clients = 4 }; { Id = 4; Client = endpointOf 4; Clients = 1 } ]
    Assert.Equal<Endpoint list>([ endpointOf 1; endpointOf 4; endpointOf 2; endpointOf 3 ], ClientSession.failoverTargets plan candidates)
    let _, welcomed = session |> run [ ConnectionOpened 2L; ReplyReceived(2L, welcome 1 "token-2", false) ]
    match welcomed |> List.tryPick (function ShowReconnected report -> Some report | _ -> None) with
    | Some report -> Assert.Equal("moved to node 1 (redirected: node 1 has 0 clients); resumed #lobby from 0", report.Describe())
    | None -> failwith $"no reconnect line in %A{welcomed}"

let ``a connection the node ended with an error ends the session, and after quit nothing fails over`` () =
    let _, ended = onlineOn 2 |> ClientSession.step (ConnectionClosed(1L, "nickname taken", true))
    Assert.Equal<ClientSessionEffect list>([ End "nickname taken" ], ended)
    let session, quit = onlineOn 2 |> ClientSession.step QuitRequested
    Assert.Equal<ClientRequest list>([ Quit ], sent quit)
    let _, closed = session |> ClientSession.step (ConnectionClosed(1L, "bye", false))
    Assert.Empty closed

let ``an attempt that is refused or closed changes nothing but the link, and a refusal is shown only the first time`` () =
    let fresh, refused = ClientSession.create "alice" 1L |> run [ ConnectionOpened 1L; ReplyReceived(1L, ErrorReply(NickTaken, "taken"), false) ]
    Assert.Contains(Show(ErrorReply(NickTaken, "taken")), refused)
    let fresh, _ = fresh |> ClientSession.step (ConnectionClosed(1L, "refused", true))
    Assert.Equal(Offline, fresh.Link)
    let session, _ = onlineOn 2 |> ClientSession.step (ConnectionClosed(1L, "reset", false))
    let session, again = session |> run [ ConnectionOpened 2L; ReplyReceived(2L, ErrorReply(NickTaken, "taken"), false); ConnectionClosed(2L, "refused", true) ]
    Assert.Equal<ClientRequest list>([ Hello(ClientSession.hello session) ], sent again)
    Assert.Equal(Offline, session.Link)
    Assert.True(session.Reconnecting.IsSome)

let ``requests other than a say need a connection, and a join makes its room the current one`` () =
    let _, offline = ClientSession.create "alice" 1L |> ClientSession.step (RequestSubmitted(Who None))
    Assert.Equal<ClientSessionEffect list>([ ShowError("not-connected", "reconnecting to the cluster; try again in a moment") ], offline)
    let session, effects = onlineOn 2 |> run [ RequestSubmitted(Join "#dev"); SayRequested((RoomName "#dev"), "hi") ]
    Assert.Equal<ClientRequest list>([ Join "#dev"; Say("#dev", "hi", 1L) ], sent effects)
    Assert.Equal("alice #dev> ", ClientSession.prompt session)

let ``the least loaded node ranks first, the lower id breaks a tie, and each node is listed once`` () =
    let node id clients = { Id = id; Client = endpointOf id; Clients = clients }
    Assert.Equal<NodeId list>([ 2; 3; 1; 4 ], ClientSession.rank [ node 1 3; node 3 0; node 2 0; node 4 5; node 4 7 ] |> List.map _.Id)

/// A room's frames as a node may send them after failovers: replays, repeats, and the client's
/// own posts coming back, in any order.
let ``property: whatever frames arrive, a room's shown seqs only rise and each post is acknowledged once`` () =
    let caseGen =
        gen {
            let! posts = Gen.choose (0, 6)
            let! frames =
                Gen.listOf (
                    gen {
                        let! room = Gen.elements [ (RoomName "#lobby"); (RoomName "#dev") ]
                        let! seq = Gen.choose (1, 12)
                        let! mine = Gen.elements [ true; false ]
                        let! id = Gen.choose (0, 8)
                        return message room (int64 seq) (if mine then "alice" else "bob") (int64 id)
                    }
                )
            return posts, frames
        }

    let property (posts: int, frames: RoomMessage list) =
        let said, _ = onlineOn 2 |> run (RequestSubmitted(Join "#dev") :: [ for n in 1..posts -> SayRequested((RoomName "#lobby"), $"post {n}") ])
        let final, effects = said |> run [ for frame in frames -> ReplyReceived(1L, Message frame, false) ]
        let shown = effects |> List.choose (function Show(Message m) -> Some m | _ -> None)
        for room in [ (RoomName "#lobby"); (RoomName "#dev") ] do
            let seqs = shown |> List.filter (fun m -> m.Room = room) |> List.map _.Seq
            Assert.Equal<int64 list>(List.sort seqs |> List.distinct, seqs)
        let acknowledged = effects |> List.choose (function ShowAcknowledged m -> Some m.ClientMessageId | _ -> None)
        Assert.Equal<int64 list>(List.distinct acknowledged, acknowledged)
        Assert.All(acknowledged, fun id -> Assert.True(said.Unconfirmed.ContainsKey id))
        Assert.Equal(said.Unconfirmed.Count, final.Unconfirmed.Count + acknowledged.Length)

    Check.One(Config.QuickThrowOnFailure.WithMaxTest(500), Prop.forAll (Arb.fromGen caseGen) property)

/// Whatever was acknowledged before a connection died, the new connection sends each post the
/// replay did not acknowledge exactly once, with its first id, in the order first said.
let ``property: after a failover every unacknowledged post is sent again once, with its id`` () =
    let caseGen =
        gen {
            let! posts = Gen.choose (1, 6)
            let! acknowledged = Gen.subListOf [ 1L .. int64 posts ]
            let! replayed = Gen.subListOf [ 1L .. int64 posts ]
            return posts, acknowledged, replayed
        }

    let property (posts: int, acknowledged: int64 list, replayed: int64 list) =
        let echo (id: int64) = ReplyReceived(1L, Message(message (RoomName "#lobby") id "alice" id), false)
        let before, _ =
            onlineOn 2
            |> run [ for n in 1..posts -> SayRequested((RoomName "#lobby"), $"post {n}") ]
            |> fst
            |> run [ for id in acknowledged -> echo id ]
        let replay = [ for id in replayed -> ReplyReceived(2L, Message(message (RoomName "#lobby") id "alice" id), false) ]
        let after, effects =
            before
            |> run ([ ConnectionClosed(1L, "reset", false); ConnectionOpened 2L; ReplyReceived(2L, welcome 1 "token-2", false) ] @ replay @ [ ReplyReceived(2L, WhoListed(None, []), true) ])
        let resent = sent effects |> List.choose (function Say(_, _, id) -> Some id | _ -> None)
        let expected = [ 1L .. int64 posts ] |> List.filter (fun id -> not (List.contains id acknowledged || List.contains id replayed))
        Assert.Equal<int64 list>(expected, resent)
        Assert.Equal(expected.Length, after.Unconfirmed.Count)

    Check.One(Config.QuickThrowOnFailure.WithMaxTest(300), Prop.forAll (Arb.fromGen caseGen) property)

[<Tests>]
let tests =
    testList "ClientSessionTests" [
        testCase "a replay after a resume shows nothing twice, and an older frame is not shown"
            ``a replay after a resume shows nothing twice, and an older frame is not shown``
        testCase "sequence numbers are per room, and the resume points name every room joined or being joined"
            ``sequence numbers are per room, and the resume points name every room joined or being joined``
        testCase "a post is unconfirmed until it comes back with its id, and only alice's own id confirms it"
            ``a post is unconfirmed until it comes back with its id, and only alice's own id confirms it``
        testCase "a post whose echo was already shown is still acknowledged"
            ``a post whose echo was already shown is still acknowledged``
        testCase "the first hello resumes nothing and later ones carry the token and every room"
            ``the first hello resumes nothing and later ones carry the token and every room``
        testCase "leaving a room forgets its position and its posts, and the lobby cannot be left"
            ``leaving a room forgets its position and its posts, and the lobby cannot be left``
        testCase "message ids start where told and never at zero"
            ``message ids start where told and never at zero``
        testCase "a failover resumes every room and re-sends what the replay did not acknowledge, with the same ids"
            ``a failover resumes every room and re-sends what the replay did not acknowledge, with the same ids``
        testCase "a redirect is tried first, the failed node last, and the line says the client moved"
            ``a redirect is tried first, the failed node last, and the line says the client moved``
        testCase "a connection the node ended with an error ends the session, and after quit nothing fails over"
            ``a connection the node ended with an error ends the session, and after quit nothing fails over``
        testCase "an attempt that is refused or closed changes nothing but the link, and a refusal is shown only the first time"
            ``an attempt that is refused or closed changes nothing but the link, and a refusal is shown only the first time``
        testCase "requests other than a say need a connection, and a join makes its room the current one"
            ``requests other than a say need a connection, and a join makes its room the current one``
        testCase "the least loaded node ranks first, the lower id breaks a tie, and each node is listed once"
            ``the least loaded node ranks first, the lower id breaks a tie, and each node is listed once``
        testCase "property: whatever frames arrive, a room's shown seqs only rise and each post is acknowledged once"
            ``property: whatever frames arrive, a room's shown seqs only rise and each post is acknowledged once``
        testCase "property: after a failover every unacknowledged post is sent again once, with its id"
            ``property: after a failover every unacknowledged post is sent again once, with its id``
    ]
