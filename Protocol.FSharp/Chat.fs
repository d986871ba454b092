/// Who is online where, and which local connection speaks for which nickname. Pure data and
/// rules; Node.fs turns client requests into these changes plus the messages they cause.
module FormalChat.Protocol.Chat

type Session =
    /// Connected, has not said hello yet.
    | Anonymous
    | Named of nick: string

type ChatState =
    { Sessions: Map<ClientId, Session>
      /// Every online user in the cluster and the node they are connected to.
      Directory: Map<string, NodeId> }

let empty = { Sessions = Map.empty; Directory = Map.empty }

let maxNickLength = 32

/// Nicknames are 1–32 letters, digits, '_' or '-', so they read well in every log and prompt.
let validateNick (nick: string) : Result<string, string> =
    let allowed (c: char) = System.Char.IsAsciiLetterOrDigit c || c = '_' || c = '-'
    if System.String.IsNullOrEmpty nick then Result.Error "a nickname is required"
    elif nick.Length > maxNickLength then Result.Error $"a nickname has at most {maxNickLength} characters"
    elif not (Seq.forall allowed nick) then Result.Error "a nickname uses only letters, digits, '_' and '-'"
    else Ok nick

let validateText (maxTextLength: int) (text: string) : Result<string, string> =
    if System.String.IsNullOrWhiteSpace text then Result.Error "a message needs some text"
    elif text.Length > maxTextLength then Result.Error $"a message has at most {maxTextLength} characters"
    elif Seq.exists (fun c -> c = '\n' || c = '\r') text then Result.Error "a message is one line"
    else Ok text

let nickOf (client: ClientId) (chat: ChatState) : string option =
    match chat.Sessions.TryFind client with
    | Some(Named nick) -> Some nick
    | _ -> None

/// The local connections that have said hello: the audience of every broadcast.
let namedClients (chat: ChatState) : ClientId list =
    [ for KeyValue(client, session) in chat.Sessions do
          match session with
          | Named _ -> client
          | Anonymous -> () ]

let clientOfNick (nick: string) (chat: ChatState) : ClientId option =
    chat.Sessions |> Map.tryFindKey (fun _ session -> session = Named nick)

let localNicks (chat: ChatState) : string list =
    [ for KeyValue(_, session) in chat.Sessions do
          match session with
          | Named nick -> nick
          | Anonymous -> () ]

let usersOn (node: NodeId) (chat: ChatState) : string list =
    [ for KeyValue(nick, at) in chat.Directory do
          if at = node then nick ]

/// Forgets the users of nodes no longer in the view; returns them so they can be announced.
let forgetNodesOutside (view: Set<NodeId>) (chat: ChatState) : ChatState * UserEntry list =
    let gone =
        [ for KeyValue(nick, node) in chat.Directory do
              if not (view.Contains node) then { Nick = nick; Node = node } ]
    let directory = gone |> List.fold (fun directory user -> Map.remove user.Nick directory) chat.Directory
    { chat with Directory = directory }, gone
