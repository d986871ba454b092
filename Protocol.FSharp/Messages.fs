/// Every message that crosses a wire: between nodes, and between a client and its node.
namespace FormalChat.Protocol

/// The protocol version every frame carries; a frame of another version is refused.
[<AutoOpen>]
module ProtocolVersion =
    let protocolVersion = 1

/// LCR election message: the candidate travels clockwise around the ring (spec: type "election").
type ElectionMessage =
    { Candidate: NodeId
      Epoch: Epoch }

/// Announcement of the elected leader, forwarded once around the ring (spec: type "leader").
type LeaderMessage =
    { Leader: NodeId
      Epoch: Epoch }

type Heartbeat =
    { From: NodeInfo
      Epoch: Epoch
      Leader: NodeId option
      Load: Load
      /// Nodes the sender knows, so seeds can introduce nodes that have no multicast.
      Known: NodeInfo list }

/// A chat room's name: '#' and 1–32 letters, digits, '_' or '-', in lower case. Every client is
/// in #lobby. What a user typed becomes one through Rooms.validateRoomName (the one check); the
/// case itself wraps a name already checked (a literal, a peer frame the codec checked, a log).
/// A Map and Set key on the hot path, so equal and ordered as its ordinal string (the order the
/// string alias had), not by F#'s structural comparison. A class, not a struct: Map and Set
/// compare keys through the non-generic IComparable, which boxes a struct on every comparison.
/// IStructuralComparable is the first interface F#'s generic comparer (Map, Set, compare) tries,
/// so implementing it spares every key comparison a failed interface cast.
[<CustomEquality; CustomComparison>]
type RoomName =
    | RoomName of string

    member this.Value = let (RoomName name) = this in name
    override this.ToString() = this.Value
    static member private TextOf(name: RoomName | null) : string | null =
        match name with
        | null -> null
        | name -> name.Value
    override this.Equals(other) =
        match other with
        | :? RoomName as other -> System.String.Equals(this.Value, other.Value)
        | _ -> false
    override this.GetHashCode() = this.Value.GetHashCode()

    interface System.IEquatable<RoomName> with
        member this.Equals(other) = System.String.Equals(this.Value, RoomName.TextOf other)

    interface System.IComparable<RoomName> with
        member this.CompareTo(other) = System.String.CompareOrdinal(this.Value, RoomName.TextOf other)

    interface System.IComparable with
        member this.CompareTo(other) =
            match other with
            | :? RoomName as other -> System.String.CompareOrdinal(this.Value, other.Value)
            | _ -> invalidArg "other" "not a RoomName"

    interface System.Collections.IStructuralComparable with
        member this.CompareTo(other, _comparer) =
            match other with
            | :? RoomName as other -> System.String.CompareOrdinal(this.Value, other.Value)
            | _ -> invalidArg "other" "not a RoomName"

/// A user's nickname: 1–32 letters, digits, '_' or '-'. What a client typed (a hello's nick, a
/// whisper's target) becomes one through Chat.validateNick, the one check; the case itself wraps
/// a nick a node already checked, as frames and logs carry it. Its own type so that a nick and a
/// room name cannot be mixed up; equal and ordered as its ordinal string, and a class, for the
/// reasons RoomName gives: both are Map and Set keys.
[<CustomEquality; CustomComparison>]
type Nick =
    | Nick of string

    member this.Value = let (Nick nick) = this in nick
    override this.ToString() = this.Value
    static member private TextOf(nick: Nick | null) : string | null =
        match nick with
        | null -> null
        | nick -> nick.Value
    override this.Equals(other) =
        match other with
        | :? Nick as other -> System.String.Equals(this.Value, other.Value)
        | _ -> false
    override this.GetHashCode() = this.Value.GetHashCode()

    interface System.IEquatable<Nick> with
        member this.Equals(other) = System.String.Equals(this.Value, Nick.TextOf other)

    interface System.IComparable<Nick> with
        member this.CompareTo(other) = System.String.CompareOrdinal(this.Value, Nick.TextOf other)

    interface System.IComparable with
        member this.CompareTo(other) =
            match other with
            | :? Nick as other -> System.String.CompareOrdinal(this.Value, other.Value)
            | _ -> invalidArg "other" "not a Nick"

    interface System.Collections.IStructuralComparable with
        member this.CompareTo(other, _comparer) =
            match other with
            | :? Nick as other -> System.String.CompareOrdinal(this.Value, other.Value)
            | _ -> invalidArg "other" "not a Nick"

/// A message a member's node sends to the room's owner to be sequenced.
type RoomPost =
    { Room: RoomName
      From: Nick
      FromNode: NodeId
      Text: string
      /// Chosen by the client, so a retry after a failover is recognised and shown once.
      ClientMessageId: int64 }

/// A message the room's owner has sequenced: every member sees the room in Seq order.
type RoomMessage =
    { Room: RoomName
      Seq: int64
      From: Nick
      FromNode: NodeId
      Text: string
      ClientMessageId: int64 }

/// The leader's assignment of a room to the node that owns (sequences) it. (Epoch, Version,
/// Leader) orders assignments (AssignmentOrder): a newer epoch's wins, within one epoch the
/// later one (Version counts the room's assignments), and of two with one (epoch, version)
/// the higher leader's, whatever order they arrive in.
type Assignment =
    { Owner: NodeId
      Epoch: Epoch
      /// The leader that made it: two nodes can win one epoch, and this breaks their tie.
      Leader: NodeId
      Version: int
      /// The room's last sequence number the leader had seen, so a new owner continues it.
      LastSeq: int64 }

/// The leader's choice of a room's backup for one owner (spec/Replication.tla). Ordered like
/// placements: the newest (epoch, version) wins everywhere.
type BackupAssignment =
    { Backup: NodeId
      /// The owner this backup serves; once the room has another owner, the assignment is void.
      Owner: NodeId
      Epoch: Epoch
      /// The leader that made it (see Assignment.Leader).
      Leader: NodeId
      Version: int }

/// Spec: Newer(a, b) of Placement.tla. The one order of the leader's assignments, placements
/// and backups alike: the newer epoch, then the later version, then the higher leader. Two
/// nodes can win one epoch (LCR's survivors can finish a stopped leader's round again,
/// spec/MCFormalChatTwoLeaders3.cfg), and each may assign a room with the same (epoch,
/// version): without the leader's id the two would tie, each node would keep whichever came
/// first, and two nodes could keep different owners for good. The leader comes after the
/// version so that a later leader of the epoch with a lower id still re-places a room.
module AssignmentOrder =
    let isNewer (epoch: Epoch, version: int, leader: NodeId) (thanEpoch: Epoch, thanVersion: int, thanLeader: NodeId) : bool =
        (epoch, version, leader) > (thanEpoch, thanVersion, thanLeader)

type PrivateLine =
    { From: Nick
      FromNode: NodeId
      To: Nick
      Text: string }

/// A user, the node it is connected to, and the rooms it is in.
type UserEntry = { Nick: Nick; Node: NodeId; Rooms: RoomName list }

/// What nodes tell each other about a user: also the session token that lets the user's
/// client take its nickname over on another node after a failover.
type KnownUser = { User: UserEntry; Session: string }

/// A nickname registrar's term (spec/NickRegistry.tla): the leader that registers nicknames
/// and the epoch it won. Terms are ordered by epoch, then leader (two nodes can lead one epoch).
type NickTerm = { Epoch: Epoch; Leader: NodeId }

/// A nickname claim and its answers (spec/NickRegistry.tla): the nickname, the user's session,
/// the node that claims or holds it, and the registrar's term the message belongs to. Session
/// tokens rotate on every resume, so a resuming hello's claim also names the token it proves
/// (`Previous`): the registry may still hold the nickname under that one.
type NickClaim =
    { Nick: Nick
      Session: string
      Previous: string option
      Node: NodeId
      Term: NickTerm }

/// Node-to-node messages, over multicast (heartbeats) and the TCP peer links (the rest).
type PeerMessage =
    | HeartbeatSent of Heartbeat
    | Election of ElectionMessage
    | LeaderAnnounced of LeaderMessage
    /// A node shutting down on purpose, so peers need not wait for K missed heartbeats.
    | LeaveAnnounced of NodeId
    | PrivateForwarded of PrivateLine
    /// A user welcomed on a node; `previous` is the session token the hello proved when it
    /// resumed (tokens rotate on every resume), so the node of a stale connection knows it.
    | UserJoined of user: KnownUser * previous: string option
    | UserLeft of nick: Nick * node: NodeId
    | MemberJoined of room: RoomName * nick: Nick
    | MemberLeft of room: RoomName * nick: Nick
    /// The full list of a node's local users, sent to a node that has just appeared.
    | UsersListed of node: NodeId * users: KnownUser list
    /// Asks a node for its UsersListed and placements. Sent with our own list when a node
    /// appears, because the other side may never have seen us leave (a one-sided suspicion,
    /// or a restart faster than K heartbeats) and so would not send its list by itself.
    | UsersRequested of node: NodeId
    /// A node asks the leader to place a room nobody owns yet (spec: RequestRoom).
    | PlacementRequested of room: RoomName * requester: NodeId
    /// The leader's placement, sent to every node (spec: AssignRoom, RecvAssignment).
    | RoomAssigned of room: RoomName * placement: Assignment
    | RoomPosted of RoomPost
    /// A committed message, sent by the owner to every node.
    | RoomSequenced of RoomMessage
    /// The leader's choice of a room's backup, sent to every node (spec: AssignBackup).
    | BackupAssigned of room: RoomName * backup: BackupAssignment
    /// State transfer from the owner to a new backup: the room's committed history and the
    /// messages not yet committed (spec: SyncBackup). The backup's copy becomes exactly this.
    | ReplicaSynced of room: RoomName * backup: BackupAssignment * committed: RoomMessage list * pending: RoomMessage list
    /// The owner's next message, for the backup to store (spec: StoreReplica).
    | ReplicaAppended of room: RoomName * backup: BackupAssignment * messages: RoomMessage list
    /// The backup holds every message of the room up to `seq`, as the backup of `backup`
    /// (spec: RecvStored): the whole assignment, as the owner compares it.
    | ReplicaStored of room: RoomName * backup: BackupAssignment * seq: int64
    /// A node missed some committed messages (it saw a later one): it asks the owner for them.
    | HistoryRequested of room: RoomName * after: int64 * requester: NodeId
    /// Committed messages from the owner, oldest first: a reply to HistoryRequested, or the
    /// history a node that has just appeared is given.
    | HistoryShared of room: RoomName * messages: RoomMessage list
    /// The highest sequence number a node holds of each room it has (committed or stored), in
    /// its introduction: a leader places a room it has no placement of only once every node of
    /// its view has reported, on one holding the most (spec/Replication.tla: AssignRoom).
    | RoomsHeld of node: NodeId * rooms: (RoomName * int64) list
    /// A node asks the registrar (the leader) for a nickname before it welcomes anyone with it
    /// (spec: ClaimNick); the registrar grants it or refuses it, naming the holder.
    | NickClaimed of NickClaim
    | NickGranted of NickClaim
    | NickRefused of claim: NickClaim * holder: NodeId
    /// A user has left; its node gives the nickname back (spec: ReleaseNick).
    | NickReleased of NickClaim
    /// A node's nicknames and sessions, to the registrar of `term` (spec: FollowRegistrar).
    | NicksReported of node: NodeId * term: NickTerm * nicks: (Nick * string) list
    /// A registrar asks for a node's report (spec: AskForReport).
    | NicksRequested of NickTerm

/// A password as the core sees it: never the password itself. The wire carries Given; the shell
/// (Node.CSharp) replaces it before the request reaches the core, with the PBKDF2 record it
/// computed (register) or matched the password against (hello), or with Mismatched.
type Password =
    /// As read from the wire; the core takes it for no proof at all.
    | Given of password: string
    /// The account record (Accounts.fs) the shell computed or verified the password against.
    | Hashed of record: string
    /// Hello: the shell checked the password against the nick's record, and it did not match.
    | Mismatched

type HelloRequest =
    { Nick: string
      /// The session token of an earlier welcome: a reconnecting client proves it owns the
      /// nickname with it, and takes the nickname over from its old, dead connection.
      Session: string option
      /// Rooms to rejoin, each with the last sequence number the client showed: the node
      /// replays what came after it, so the client sees no gap and no duplicate.
      Resume: (string * int64) list
      /// Needed once the nick has an account (Accounts.fs), unless the hello resumes a live session.
      Password: Password option }

/// Client-to-node requests. Rooms are as the client typed them: the node checks and
/// canonicalises each one (Rooms.validateRoomName) before it becomes a RoomName.
type ClientRequest =
    | Hello of HelloRequest
    | Say of room: string * text: string * clientMessageId: int64
    | Whisper of toNick: string * text: string
    | Join of room: string
    | Leave of room: string
    | Rooms
    | Who of room: string option
    | Status
    | Quit
    /// Sets (or changes) the password of the caller's nick (Accounts.fs).
    | Register of password: Password

type RoomSummary =
    { Room: RoomName
      Owner: NodeId option
      /// The live backup the leader chose for the owner, if any.
      Backup: NodeId option
      Members: int }

type NodeStatus =
    { Id: NodeId
      ClientEndpoint: Endpoint
      Load: Load
      IsLeader: bool
      IsSelf: bool }

type ClusterStatus =
    { Self: NodeId
      Leader: NodeId option
      Epoch: Epoch
      Nodes: NodeStatus list
      /// Placed rooms without an up-to-date backup, as far as this node knows: no live backup,
      /// or (on the owner) one still catching up. They keep serving; an owner crash can lose
      /// what they commit alone.
      Unreplicated: RoomName list }

/// Why a request was refused; each case has a stable code on the wire.
type ErrorCode =
    | NickTaken
    | NickInvalid
    | HelloFirst
    | AlreadyHello
    | NoSuchUser
    | ServerFull
    | TextInvalid
    | BadFrame
    | FrameTooLarge
    | VersionMismatch
    | RoomInvalid
    | NotInRoom
    /// The client sends faster than --client-rate allows: its frames are read more slowly (none
    /// is dropped); it is told once each time that starts.
    | RateLimited
    /// Sent by the shell, not the core: this port speaks TLS only and the client spoke plain text.
    | TlsRequired
    /// Sent by the shell, not the core: too many failed resumes (wrong session token) from the
    /// client's address; the connection is closed.
    | LoginThrottled
    /// The nick has an account: its hello needs the password (or a live session's token).
    | PasswordRequired
    /// The password does not match the nick's account.
    | PasswordWrong
    /// Sent by the shell: a password is 1 to Accounts.maxPasswordLength characters.
    | PasswordInvalid
    /// The nickname registrar (the leader) did not answer in time, as while the cluster elects
    /// a leader: say hello again in a moment (NickRegistry.fs).
    | TryAgain

module ErrorCode =
    /// Each code's name on the wire: the one mapping, used both ways and by docs/PROTOCOL.md's
    /// test. A match, so a code added without a name does not compile (warnings are errors).
    let name (code: ErrorCode) : string =
        match code with
        | NickTaken -> "nick-taken"
        | NickInvalid -> "nick-invalid"
        | HelloFirst -> "hello-first"
        | AlreadyHello -> "already-hello"
        | NoSuchUser -> "no-such-user"
        | ServerFull -> "server-full"
        | TextInvalid -> "text-invalid"
        | BadFrame -> "bad-frame"
        | FrameTooLarge -> "frame-too-large"
        | VersionMismatch -> "version-mismatch"
        | RoomInvalid -> "room-invalid"
        | NotInRoom -> "not-in-room"
        | RateLimited -> "rate-limited"
        | TlsRequired -> "tls-required"
        | LoginThrottled -> "login-throttled"
        | PasswordRequired -> "password-required"
        | PasswordWrong -> "password-wrong"
        | PasswordInvalid -> "password-invalid"
        | TryAgain -> "try-again"

    /// Every code, in declaration order, read off the union itself.
    let all : ErrorCode list =
        [ for case in Microsoft.FSharp.Reflection.FSharpType.GetUnionCases typeof<ErrorCode> ->
              unbox<ErrorCode> (Microsoft.FSharp.Reflection.FSharpValue.MakeUnion(case, [||])) ]

    let names : (ErrorCode * string) list = all |> List.map (fun code -> code, name code)

    let tryParse (text: string) : ErrorCode option = names |> List.tryFind (snd >> (=) text) |> Option.map fst

/// Node-to-client messages.
type ServerReply =
    | Welcome of nick: Nick * node: NodeId * leader: NodeId option * session: string
    | Message of RoomMessage
    | Private of PrivateLine
    | Joined of room: RoomName * owner: NodeId option * members: int
    | LeftRoom of room: RoomName
    | RoomsListed of RoomSummary list
    | WhoListed of room: RoomName option * users: UserEntry list
    | StatusReported of ClusterStatus
    /// This node is shedding load: reconnect to that node and resume there.
    | Redirected of node: NodeId * client: Endpoint * reason: string
    | ErrorReply of code: ErrorCode * reason: string
    | Notice of text: string
