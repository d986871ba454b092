/// Accounts (Accounts.fs) and session tokens: the pure password rule, then registration and
/// login end to end through Node.step on a three-node cluster wired by Simulation.Nodes. The
/// shell's part (PBKDF2) is stood in for by records the tests choose: the core only compares them.
module FormalChat.Protocol.Tests.AccountsTests

open Expecto
open FormalChat.Protocol
open FormalChat.Protocol.NodeState
open FormalChat.Protocol.Tests.Simulation
open Xunit

let private config = { ProtocolConfig.defaults with SuspectAfter = 3; Rebalance = None; HistoryOnJoin = 3 }

let private accountMessage (seq: int64) (nick: string) (record: string) : RoomMessage =
    { Room = Accounts.room; Seq = seq; From = Nick nick; FromNode = 1; Text = record; ClientMessageId = 0L }

let private errorsOf (client: ClientId) (net: Nodes.Net) : ErrorCode list =
    [ for reply in Nodes.inbox client net do
          match reply with
          | ErrorReply(code, _) -> code
          | _ -> () ]

let private welcomedAs (client: ClientId) (net: Nodes.Net) : string option =
    Nodes.inbox client net |> List.tryPick (function Welcome(_, _, _, session) -> Some session | _ -> None)

let private helloWith (nick: string) (session: string option) (password: Password option) =
    Hello { Nick = nick; Session = session; Resume = []; Password = password }

/// A new connection on `node` says hello.
let private login (node: NodeId) (client: ClientId) (nick: string) (session: string option) (password: Password option) (net: Nodes.Net) =
    net
    |> Nodes.apply node (ClientConnected(client, $"token-{client}"))
    |> Nodes.request node client (helloWith nick session password)
    |> Nodes.settle

/// Nodes 1, 2, 3 (ann on 1, ben on 2, cat on 3); ann has registered the record "record-1".
let private annRegistered () : Nodes.Net =
    Nodes.threeWithUsers config
    |> Nodes.request 1 10 (Register(Hashed "record-1"))
    |> Nodes.settle
    |> Nodes.tickAll
    |> Nodes.tickAll

// ---------------------------------------------------------------------------------------------
// The rule.

let ``checkPassword: a nick without an account needs no password`` () =
    Assert.Equal(Ok(), Accounts.checkPassword (Nick "ann") None false None)
    Assert.Equal(Ok(), Accounts.checkPassword (Nick "ann") None false (Some Mismatched))

let ``checkPassword: a registered nick needs the shell's match against its current record`` () =
    let check = Accounts.checkPassword (Nick "ann") (Some "record-2") false
    Assert.Equal(Ok(), check (Some(Hashed "record-2")))
    Assert.Equal(Result.Error PasswordRequired, check None |> Result.mapError fst)
    Assert.Equal(Result.Error PasswordWrong, check (Some Mismatched) |> Result.mapError fst)
    // Matched against a record the nick no longer has (changed meanwhile), or never checked.
    Assert.Equal(Result.Error PasswordWrong, check (Some(Hashed "record-1")) |> Result.mapError fst)
    Assert.Equal(Result.Error PasswordWrong, check (Some(Given "hunter2")) |> Result.mapError fst)

let ``checkPassword: resuming a live session needs no password`` () =
    Assert.Equal(Ok(), Accounts.checkPassword (Nick "ann") (Some "record-1") true None)

let ``recordOf: the newest record of the nick wins`` () =
    let history =
        Rooms.ofMessages [ accountMessage 1L "ann" "record-1"; accountMessage 2L "ben" "record-b"; accountMessage 3L "ann" "record-2" ]
    Assert.Equal(Some "record-2", Accounts.recordOf (Nick "ann") history)
    Assert.Equal(Some "record-b", Accounts.recordOf (Nick "ben") history)
    Assert.Equal(None, Accounts.recordOf (Nick "cat") history)

let ``registration: the core takes only a record the shell computed`` () =
    Assert.True((Accounts.registration 1 (Nick "ann") (Hashed "record-1")).IsOk)
    Assert.Equal(Result.Error PasswordInvalid, Accounts.registration 1 (Nick "ann") (Given "hunter2") |> Result.map ignore |> Result.mapError fst)

// ---------------------------------------------------------------------------------------------
// End to end through Node.step.

let ``register on node 1: once committed, every node holds the record and the client is told`` () =
    let net = annRegistered ()
    for node in [ 1; 2; 3 ] do
        Assert.Equal(Some "record-1", Accounts.recordOf (Nick "ann") (historyOf Accounts.room net.States[node]))
    Assert.Contains(Notice(Accounts.registered (Nick "ann")), Nodes.inbox 10 net)
    let placement = net.States[1].Placements.TryFind Accounts.room
    Assert.True(placement.IsSome, "the accounts room is placed like any room")
    let backup = net.States[1].Backups.TryFind Accounts.room
    Assert.True(backup.IsSome, "and has a backup")

let ``hello on node 2 for a registered nick: missing and wrong passwords are refused and closed, the right one is welcomed`` () =
    // ann leaves first, so the nick is free.
    let net = annRegistered () |> Nodes.request 1 10 Quit |> Nodes.settle
    let net = net |> login 2 21 "ann" None None |> login 2 22 "ann" None (Some Mismatched) |> login 2 23 "ann" None (Some(Hashed "record-1"))
    Assert.Equal<ErrorCode list>([ PasswordRequired ], errorsOf 21 net)
    Assert.Equal<ErrorCode list>([ PasswordWrong ], errorsOf 22 net)
    Assert.Equal(Some "password-required", net.Closed.TryFind 21)
    Assert.Equal(Some "password-wrong", net.Closed.TryFind 22)
    Assert.Equal(Some "token-23", welcomedAs 23 net)

let ``the accounts survive the crash of the room's owner`` () =
    let net = annRegistered () |> Nodes.request 1 10 Quit |> Nodes.settle
    let owner = net.States[1].Placements[Accounts.room].Owner
    let survivor = [ 1; 2; 3 ] |> List.find (fun node -> node <> owner)
    let net = net |> Nodes.crash owner |> Nodes.tickAll |> Nodes.tickAll |> Nodes.tickAll |> Nodes.tickAll
    let net = net |> login survivor 41 "ann" None None |> login survivor 42 "ann" None (Some(Hashed "record-1"))
    Assert.Equal<ErrorCode list>([ PasswordRequired ], errorsOf 41 net)
    Assert.Equal(Some "token-42", welcomedAs 42 net)

let ``the accounts come back from the log after a full restart`` () =
    let net = annRegistered ()
    let logged = net.States[2] |> historyOf Accounts.room |> Rooms.since 0L
    let restarted = NodeState.recover [ Accounts.room, logged ] (NodeState.init (Nodes.infoOf 2))
    Assert.Equal(Some "record-1", Accounts.recordOf (Nick "ann") (historyOf Accounts.room restarted))

let ``the accounts room cannot be joined, posted to or listed by clients`` () =
    let net = annRegistered () |> Nodes.clearInboxes
    let net = net |> Nodes.request 2 20 (Join Accounts.room.Value) |> Nodes.request 2 20 (Say(Accounts.room.Value, "hi", 1L)) |> Nodes.request 2 20 Rooms
    Assert.Equal<ErrorCode list>([ RoomInvalid; RoomInvalid ], errorsOf 20 net)
    let listed = Nodes.inbox 20 net |> List.pick (function RoomsListed rooms -> Some rooms | _ -> None)
    Assert.DoesNotContain(Accounts.room, listed |> List.map _.Room)

let ``a changed password replaces the old one on every node`` () =
    let net = annRegistered () |> Nodes.request 1 10 (Register(Hashed "record-2")) |> Nodes.settle |> Nodes.tickAll
    let net = net |> Nodes.request 1 10 Quit |> Nodes.settle |> login 3 31 "ann" None (Some(Hashed "record-1")) |> login 3 32 "ann" None (Some(Hashed "record-2"))
    Assert.Equal<ErrorCode list>([ PasswordWrong ], errorsOf 31 net)
    Assert.Equal(Some "token-32", welcomedAs 32 net)

// ---------------------------------------------------------------------------------------------
// Session tokens.

let ``a hello for a free nick gets the connection's own token, never one the client chose`` () =
    let net = Nodes.threeWithUsers config |> login 2 21 "dan" (Some "chosen-by-client") None
    Assert.Equal(Some "token-21", welcomedAs 21 net)
    Assert.Equal(Some "token-21", net.States[1].Chat.Directory.TryFind(Nick "dan") |> Option.map _.Session)

let ``a resume rotates the token: the old one is refused afterwards, and the stale connection is closed`` () =
    let net = Nodes.threeWithUsers config |> login 2 21 "ann" (Some(Nodes.sessionOf 10)) None
    Assert.Equal(Some "token-21", welcomedAs 21 net)
    Assert.Equal(Some "continued on node 2", net.Closed.TryFind 10)
    for node in [ 1; 2; 3 ] do
        Assert.Equal(Some "token-21", net.States[node].Chat.Directory.TryFind(Nick "ann") |> Option.map _.Session)
    let net = net |> login 3 31 "ann" (Some(Nodes.sessionOf 10)) None
    Assert.Equal<ErrorCode list>([ NickTaken ], errorsOf 31 net)

let ``a registered nick resuming its live session needs no password, a token of an ended session does not help`` () =
    let net = annRegistered () |> login 2 21 "ann" (Some(Nodes.sessionOf 10)) None
    Assert.Equal(Some "token-21", welcomedAs 21 net)
    let net = net |> Nodes.request 2 21 Quit |> Nodes.settle |> login 3 31 "ann" (Some "token-21") None
    Assert.Equal<ErrorCode list>([ PasswordRequired ], errorsOf 31 net)

[<Tests>]
let tests =
    testList "Accounts" [
        testCase "checkPassword: a nick without an account needs no password" ``checkPassword: a nick without an account needs no password``
        testCase "checkPassword: a registered nick needs the shell's match against its current record"
            ``checkPassword: a registered nick needs the shell's match against its current record``
        testCase "checkPassword: resuming a live session needs no password" ``checkPassword: resuming a live session needs no password``
        testCase "recordOf: the newest record of the nick wins" ``recordOf: the newest record of the nick wins``
        testCase "registration: the core takes only a record the shell computed" ``registration: the core takes only a record the shell computed``
        testCase "register on node 1: once committed, every node holds the record and the client is told"
            ``register on node 1: once committed, every node holds the record and the client is told``
        testCase "hello on node 2 for a registered nick: missing and wrong passwords are refused and closed, the right one is welcomed"
            ``hello on node 2 for a registered nick: missing and wrong passwords are refused and closed, the right one is welcomed``
        testCase "the accounts survive the crash of the room's owner" ``the accounts survive the crash of the room's owner``
        testCase "the accounts come back from the log after a full restart" ``the accounts come back from the log after a full restart``
        testCase "the accounts room cannot be joined, posted to or listed by clients"
            ``the accounts room cannot be joined, posted to or listed by clients``
        testCase "a changed password replaces the old one on every node" ``a changed password replaces the old one on every node``
        testCase "a hello for a free nick gets the connection's own token, never one the client chose"
            ``a hello for a free nick gets the connection's own token, never one the client chose``
        testCase "a resume rotates the token: the old one is refused afterwards, and the stale connection is closed"
            ``a resume rotates the token: the old one is refused afterwards, and the stale connection is closed``
        testCase "a registered nick resuming its live session needs no password, a token of an ended session does not help"
            ``a registered nick resuming its live session needs no password, a token of an ended session does not help``
    ]
