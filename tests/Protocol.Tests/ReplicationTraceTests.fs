/// ReplicationTrace.linesOf (--trace-file PATH.replication, spec/TraceReplication.tla): the lines
/// a step of the real Node.step gives, in init / act / check parts.
module FormalChat.Protocol.Tests.ReplicationTraceTests

open Expecto
open FormalChat.Protocol
open FormalChat.Protocol.NodeState
open System.Text.Json
open Xunit

let private config = ProtocolConfig.defaults

let private infoOf (id: NodeId) : NodeInfo =
    { Id = id
      ClientEndpoint = { Host = "127.0.0.1"; Port = 5000 + id }
      PeerEndpoint = { Host = "127.0.0.1"; Port = 6000 + id } }

let private linesOf (state: NodeState) (event: Event) =
    let after, effects = Node.step config state event
    ReplicationTrace.linesOf 7L 99L event state after effects

let ``a backup assignment received is one line of its room, with the message and the node's new assignment`` () =
    let state = NodeState.init (infoOf 1)
    let assignment = { Backup = 1; Owner = 2; Epoch = 3L; Leader = 3; Version = 1 }
    let received = BackupAssigned((RoomName "#r"), assignment)

    let lines = linesOf state (PeerMessageReceived received)

    Assert.Equal(1, lines.Length)
    use line = JsonDocument.Parse lines.Head
    let field (path: string) =
        path.Split '.' |> Array.fold (fun (element: JsonElement) (name: string) -> element.GetProperty name) line.RootElement
    Assert.Equal("#r", field("room").ToString())
    Assert.Equal(ReplicationTrace.messageKey received, field("received").[0].ToString())
    Assert.Equal(1, field("backup.backup").GetInt32())
    Assert.Equal(2, field("backup.owner").GetInt32())
    Assert.Equal(1, field("backup.version").GetInt32())
    Assert.False(field("owner").GetBoolean())
    Assert.Equal(-1L, field("confirmed").GetInt64())
    Assert.Equal(0, field("history").GetArrayLength())

let ``a step that touches no room gives no line`` () =
    Assert.Empty(linesOf (NodeState.init (infoOf 1)) Ticked)

let ``a message has one key at its sender and its receiver, and two messages two keys`` () =
    let assignment = { Backup = 1; Owner = 2; Epoch = 3L; Leader = 3; Version = 1 }

    Assert.Equal(ReplicationTrace.messageKey (ReplicaStored((RoomName "#r"), assignment, 4L)), ReplicationTrace.messageKey (ReplicaStored((RoomName "#r"), assignment, 4L)))
    Assert.NotEqual<string>(ReplicationTrace.messageKey (ReplicaStored((RoomName "#r"), assignment, 4L)), ReplicationTrace.messageKey (ReplicaStored((RoomName "#r"), assignment, 5L)))

[<Tests>]
let tests =
    testList "ReplicationTrace" [
        testCase "a backup assignment received is one line of its room, with the message and the node's new assignment"
            ``a backup assignment received is one line of its room, with the message and the node's new assignment``
        testCase "a step that touches no room gives no line" ``a step that touches no room gives no line``
        testCase "a message has one key at its sender and its receiver, and two messages two keys"
            ``a message has one key at its sender and its receiver, and two messages two keys``
    ]
