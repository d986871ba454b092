/// Accounts: a nickname with a password. The core never sees a password: the shell turns it into
/// a PBKDF2 record (register) or checks it against the nick's record (hello), and the core keeps
/// and compares those records as opaque text (Messages.Password). An account is a message in a
/// reserved room, so the primary–backup replication of rooms keeps accounts too: what the room's
/// owner acknowledges is on its backup, every node keeps the room's history, and every node's
/// log brings it back after a crash or a full restart.
module FormalChat.Protocol.Accounts

/// The room whose messages are the accounts: From is the nick, Text its record, the newest one
/// winning. '@' is not allowed in a room name a client gives (Rooms.validateRoomName), so no
/// client can join it, post to it or ask who is in it.
let room = RoomName "#@accounts"

let isAccountsRoom (name: RoomName) : bool = System.String.Equals(name.Value, room.Value)

/// The longest password the shell hashes; a longer one is refused as password-invalid.
let maxPasswordLength = 1024

/// The nick's record: the text of its newest message in the accounts room, if any. The room
/// keeps Rooms.historyCapacity messages, so at most that many account changes are remembered.
let recordOf (nick: Nick) (accounts: Rooms.RoomHistory) : string option =
    accounts.Recent |> List.tryFind (fun message -> message.From = nick) |> Option.map _.Text

/// Whether a hello may take `nick` as far as its account goes. A hello that resumes a live
/// session (it shows the token the directory holds) was welcomed with the password before; any
/// other needs the shell's verdict that the password matches the record the nick has now.
let checkPassword (nick: Nick) (record: string option) (resumesLiveSession: bool) (password: Password option) : Result<unit, ErrorCode * string> =
    match record, password with
    | None, _ -> Ok()
    | Some _, _ when resumesLiveSession -> Ok()
    | Some current, Some(Hashed checkedAgainst) when checkedAgainst = current -> Ok()
    | Some _, Some(Hashed _) -> Result.Error(PasswordWrong, $"the password of {nick} changed meanwhile; try again")
    | Some _, Some Mismatched -> Result.Error(PasswordWrong, $"wrong password for {nick}")
    | Some _, Some(Given _) -> Result.Error(PasswordWrong, $"the password for {nick} was not checked")
    | Some _, None -> Result.Error(PasswordRequired, $"{nick} is a registered nickname: hello needs its password")

/// The post that registers (or changes) the password of `nick`, to be sequenced in the accounts
/// room like any post: the shell has already turned the password into a record.
let registration (node: NodeId) (nick: Nick) (password: Password) : Result<RoomPost, ErrorCode * string> =
    match password with
    | Hashed record -> Ok { Room = room; From = nick; FromNode = node; Text = record; ClientMessageId = 0L }
    | Given _
    | Mismatched -> Result.Error(PasswordInvalid, "the password was not hashed")

/// What the registering client is told once its account is committed (on the owner and its backup).
let registered (nick: Nick) : string = $"registered: {nick} now needs its password to say hello, on every node"
